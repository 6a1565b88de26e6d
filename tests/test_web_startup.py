"""The web process starts without torch: the admin, forms and services import DreamBooth, diffusers and the
evaluation encoders only where they are used (a gunicorn worker would otherwise pay ~10 s per start)."""
import os
import subprocess
import sys

from tests.conftest import REPO


def test_the_wsgi_application_imports_no_torch():
    code = "import sys, retroportal.wsgi\nbad = [m for m in ('torch', 'diffusers') if m in sys.modules]\nassert not bad, bad\n"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "retroportal.settings_test", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
