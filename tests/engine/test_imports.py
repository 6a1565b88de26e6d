import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_engine_never_imports_django_and_open_clip_loads_lazily():
    code = (
        "import sys\n"
        "import generator.engine.cache, generator.engine.clipscore, generator.engine.export, generator.engine.generate\n"
        "import generator.engine.infotext, generator.engine.loading, generator.engine.prompts\n"
        "import generator.engine.schedulers, generator.engine.tiny, generator.engine.devices\n"
        "bad = [m for m in ('django', 'open_clip') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
