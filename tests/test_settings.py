"""Production settings: `check --deploy` is clean, and a missing SECRET_KEY is refused when DEBUG is off."""
import os
import subprocess
import sys

from tests.conftest import REPO


def run_manage(*args, **env):
    # A clean production-like environment: the browser fixture sets DJANGO_ALLOW_ASYNC_UNSAFE for the test
    # process only, and check --deploy rightly warns about it.
    dropped = ("DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    base.update(DJANGO_SETTINGS_MODULE="retroportal.settings", **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=base, capture_output=True, text=True)


def test_production_settings_pass_check_deploy():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DEBUG="0", SECRET_KEY="x" * 20 + "production-secret-key-with-entropy-0123456789", ALLOWED_HOSTS="example.org",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_secret_key_is_required_when_debug_is_off():
    result = run_manage("check", DEBUG="0", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_a_bad_boolean_names_the_variable():
    result = run_manage("check", DEBUG="maybe", SECRET_KEY="k")
    assert result.returncode != 0
    assert "DEBUG='maybe'" in result.stderr
