"""Settings for the test suite: real PostgreSQL and Redis (127.0.0.1 defaults, or DATABASE_URL / REDIS_URL)."""
import os
import tempfile

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", "test-secret-key")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/retroportal")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="retroportal-test-media-"))
# pytest -n: worker gwN uses Redis db (REDIS_URL's db − N) and MEDIA_ROOT/gwN — pytest-django suffixes the
# database name itself. Without its own media folder, two workers' runs keyed by primary key would collide.
# Subprocesses inherit the shifted values and the marker, so they do not shift them again.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER.startswith("gw") and os.environ.get("RETROPORTAL_SHIFTED_FOR_WORKER") != _WORKER:
    _url, _, _db = os.environ["REDIS_URL"].rpartition("/")
    os.environ["REDIS_URL"] = f"{_url}/{(int(_db or 0) - int(_WORKER[2:])) % 16}"
    os.environ["MEDIA_ROOT"] = os.path.join(os.environ["MEDIA_ROOT"], _WORKER)
    os.makedirs(os.environ["MEDIA_ROOT"], exist_ok=True)
    os.environ["RETROPORTAL_SHIFTED_FOR_WORKER"] = _WORKER

from retroportal.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
