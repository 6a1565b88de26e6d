"""Settings for the test suite: real PostgreSQL and Redis (127.0.0.1 defaults, or DATABASE_URL / REDIS_URL)."""
import os
import tempfile

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", "test-secret-key")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/retroportal")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="retroportal-test-media-"))

from retroportal.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
