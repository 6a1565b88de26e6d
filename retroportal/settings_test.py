"""Settings for the test suite: real PostgreSQL and Redis (127.0.0.1 defaults, or DATABASE_URL / REDIS_URL)."""
import os
import tempfile

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", "test-secret-key")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/retroportal")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# pytest -n: worker gwN uses Redis db (REDIS_URL's db − N) — pytest-django suffixes the database name itself.
# Subprocesses inherit the shifted REDIS_URL and the marker, so they do not shift it again.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER.startswith("gw") and os.environ.get("RETROPORTAL_REDIS_SHIFTED_FOR") != _WORKER:
    _url, _, _db = os.environ["REDIS_URL"].rpartition("/")
    os.environ["REDIS_URL"] = f"{_url}/{(int(_db or 0) - int(_WORKER[2:])) % 16}"
    os.environ["RETROPORTAL_REDIS_SHIFTED_FOR"] = _WORKER
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="retroportal-test-media-"))

from retroportal.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
