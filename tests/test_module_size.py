"""No module over 500 lines outside migrations: a file you can read in one sitting."""
from tests.conftest import REPO

LIMIT = 500
PACKAGES = ("retroportal", "generator", "training", "jobs", "scripts", "benchmarks", "tests")
# Being rewritten by their owner (the mini-world); nothing else may be added here.
KNOWN = {"training/miniworld/pretrain.py", "training/miniworld/render.py"}


def test_no_module_over_500_lines():
    long = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > LIMIT:
                long[path.relative_to(REPO).as_posix()] = lines
    assert set(long) - KNOWN == set(), {k: v for k, v in long.items() if k not in KNOWN}
    assert all(path.startswith("training/miniworld/") for path in KNOWN)
