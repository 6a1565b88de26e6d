"""No module over 500 lines outside migrations: a file you can read in one sitting."""
from tests.conftest import REPO

LIMIT = 500
PACKAGES = ("retroportal", "generator", "gallery", "training", "jobs", "scripts", "benchmarks", "tests")


def test_no_module_over_500_lines():
    long = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > LIMIT:
                long[path.relative_to(REPO).as_posix()] = lines
    assert long == {}
