"""Django settings for retroportal, read from the environment (12-factor).

Environment variables (all optional in development):
  DEBUG                      "1" for development (default "0": production behaviour).
  SECRET_KEY                 required when DEBUG is off.
  ALLOWED_HOSTS              comma-separated (default "127.0.0.1,localhost").
  DATABASE_URL               e.g. postgres://user@127.0.0.1:5432/retroportal (PostgreSQL via psycopg);
                             default: SQLite in ./var/ (demo only).
  REDIS_URL                  default redis://127.0.0.1:6379/0.
  MEDIA_ROOT                 where generated images are stored (default ./media).
  RETROPORTAL_DEFAULT_MODEL  model registry name used when a request names none.
  RETROPORTAL_CLIP_MODEL     open_clip spec for CLIP scores: "ARCH/PRETRAINED", "hf-hub:org/repo",
                             or "local-dir:/path" (default "ViT-H-14/laion2b_s32b_b79k").
  RETROPORTAL_ALLOW_SIGNUP   "0" switches sign-up off (default on).
  RETROPORTAL_ALLOW_PICKLE   "1" lets the engine load pickle checkpoints (.ckpt/.bin/.pt/.pth); default off.
"""
from pathlib import Path
import os

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: expected 1/0, true/false, yes/no or on/off")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: expected a whole number") from None


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment (production), "
            "or DEBUG=1 for local development."
        )
    SECRET_KEY = "dev-insecure-key-only-for-debug"

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI / ReDoc assets served locally (no CDN)
    "django_rq",
    "django_filters",
    "retroportal",
    "generator",
    "gallery",
    "training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "retroportal.middleware.DatabaseUnavailableMiddleware",  # PostgreSQL down: 503 page, no traceback
    "retroportal.middleware.RejectNulBytesMiddleware",  # a NUL in a path is a 404, not a 500 in a file view
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "generator.api.middleware.TokenAuthForFilesMiddleware",  # API tokens may fetch image files (GET only)
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "retroportal.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "retroportal.context_processors.site",
            ],
        },
    },
]

WSGI_APPLICATION = "retroportal.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'var' / 'demo.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        # A persistent connection is checked before each request reuses it, so the site recovers by itself
        # after PostgreSQL restarts (retroportal.middleware answers 503 while it is down).
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Fail fast while PostgreSQL is down (a 503 page), instead of hanging a web worker.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Media is never served by URL prefix: generated images go through a permission-checking view.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
MEDIA_URL = "/media-not-served/"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "generate"
LOGOUT_REDIRECT_URL = "login"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
RQ_QUEUES = {
    "generation": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": env_int("RETROPORTAL_GENERATION_TIMEOUT", 1800)},
    "training": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": env_int("RETROPORTAL_TRAINING_TIMEOUT", 48 * 3600)},
}
# One worker process keeps its pipelines across jobs: no fork per job (a fork would reload the model,
# and CUDA does not survive a fork).
RQ = {"WORKER_CLASS": "rq.worker.SimpleWorker"}
# "1" runs jobs inside the web process instead of on Redis (make demo without Redis only).
RETROPORTAL_RUN_JOBS_INLINE = env_bool("RETROPORTAL_RUN_JOBS_INLINE", False)

RETROPORTAL_DEFAULT_MODEL = os.environ.get("RETROPORTAL_DEFAULT_MODEL", "")
# What `manage.py generate` draws with when nothing is registered: a function returning {name, base, lora,
# lora_scale} or None (the shipped mini-world model). Named here so the generator app imports no training code.
RETROPORTAL_FALLBACK_MODEL = os.environ.get("RETROPORTAL_FALLBACK_MODEL", "training.miniworld.shipped.default_spec")
RETROPORTAL_CLIP_MODEL = os.environ.get("RETROPORTAL_CLIP_MODEL", "ViT-H-14/laion2b_s32b_b79k")
# DINO ViT for evaluations (DINO metric, memorization); "none" measures memorization in CLIP space.
RETROPORTAL_DINO_MODEL = os.environ.get("RETROPORTAL_DINO_MODEL", "facebook/dino-vits16")
RETROPORTAL_EVALUATION_TIMEOUT = env_int("RETROPORTAL_EVALUATION_TIMEOUT", 6 * 3600)  # seconds per checkpoint evaluation
# Evaluation settings for the admin action / `evaluate --run` / sweeps, as JSON, e.g. '{"steps": 30, "images_per_prompt": 4}'
# (keys of training.run_evaluations.DEFAULT_SETTINGS).
try:
    import json as _json

    RETROPORTAL_EVALUATION_DEFAULTS = _json.loads(os.environ.get("RETROPORTAL_EVALUATION_DEFAULTS") or "{}")
except ValueError as _exc:
    raise ImproperlyConfigured(f"RETROPORTAL_EVALUATION_DEFAULTS is not valid JSON ({_exc})") from None
RETROPORTAL_ALLOW_SIGNUP = env_bool("RETROPORTAL_ALLOW_SIGNUP", True)
RETROPORTAL_ALLOW_PICKLE = env_bool("RETROPORTAL_ALLOW_PICKLE", False)
RETROPORTAL_LIMITS = {
    "max_width": env_int("RETROPORTAL_MAX_WIDTH", 1024),
    "max_height": env_int("RETROPORTAL_MAX_HEIGHT", 1024),
    "max_steps": env_int("RETROPORTAL_MAX_STEPS", 100),
    "max_images": env_int("RETROPORTAL_MAX_IMAGES", 4),
    "max_guidance": 30.0,
    "max_upload_bytes": env_int("RETROPORTAL_MAX_UPLOAD_BYTES", 10 * 1024 * 1024),  # init pictures and masks
    "max_upload_pixels": env_int("RETROPORTAL_MAX_UPLOAD_PIXELS", 4096 * 4096),
}
# transformers MarianMT model (hub id or folder) for translate="id" (e.g. Helsinki-NLP/opus-mt-id-en); "" = off.
RETROPORTAL_TRANSLATE_MODEL = os.environ.get("RETROPORTAL_TRANSLATE_MODEL", "")
RETROPORTAL_MAX_QUEUED_JOBS_PER_USER = env_int("RETROPORTAL_MAX_QUEUED_JOBS_PER_USER", 5)
# Back-pressure (0 switches one off): images per user over a rolling 24 h, and queued jobs over all users.
RETROPORTAL_DAILY_IMAGE_QUOTA = env_int("RETROPORTAL_DAILY_IMAGE_QUOTA", 200)
RETROPORTAL_MAX_QUEUED_JOBS = env_int("RETROPORTAL_MAX_QUEUED_JOBS", 500)
# Sign-in throttling: this many failed attempts for one username from one IP address lock that pair out
# for RETROPORTAL_LOGIN_LOCKOUT_SECONDS (counted in Django's cache: see CACHES).
RETROPORTAL_LOGIN_MAX_FAILURES = env_int("RETROPORTAL_LOGIN_MAX_FAILURES", 5)
RETROPORTAL_LOGIN_LOCKOUT_SECONDS = env_int("RETROPORTAL_LOGIN_LOCKOUT_SECONDS", 900)
# Dataset uploads (training app): caps on one upload or zip, and threads used to prepare a dataset
# (0: one per CPU core).
RETROPORTAL_DATASET_LIMITS = {
    "max_files": env_int("RETROPORTAL_DATASET_MAX_FILES", 2000),
    "max_total_bytes": env_int("RETROPORTAL_DATASET_MAX_BYTES", 2 * 1024**3),
    "max_ratio": float(env_int("RETROPORTAL_DATASET_MAX_ZIP_RATIO", 100)),
}
RETROPORTAL_DATASET_WORKERS = env_int("RETROPORTAL_DATASET_WORKERS", 0)
# A running job's worker refreshes a Redis key this often (TTL, seconds); when the key expires the
# worker is gone (killed, crashed) and services.reconcile marks the job failed.
RETROPORTAL_JOB_HEARTBEAT_TTL = env_int("RETROPORTAL_JOB_HEARTBEAT_TTL", 30)
# Seconds a queued row may wait for Redis to hear of it before reconcile counts it lost (jobs.core).
RETROPORTAL_JOB_ENQUEUE_GRACE_SECONDS = env_int("RETROPORTAL_JOB_ENQUEUE_GRACE_SECONDS", 30)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    # Reads the rate at request time (DRF's own class binds it at import): generator/api/throttling.py.
    "DEFAULT_THROTTLE_CLASSES": ["generator.api.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": os.environ.get("RETROPORTAL_API_RATE", "120/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "retroportal API",
    "DESCRIPTION": "Generate retro anime characters, follow jobs, list and fetch images.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Self-hosted Swagger UI and ReDoc (drf-spectacular-sidecar): /api/docs/ makes no external requests.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)  # non-file body
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("DATA_UPLOAD_MAX_NUMBER_FILES", 2000)  # dataset uploads (admins)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440  # larger files are streamed to a temporary file, not held in RAM
# The total size of a dataset upload is bounded by RETROPORTAL_DATASET_MAX_BYTES (training.datasets); put a
# body-size limit in front of gunicorn as well (nginx client_max_body_size) in production.

# Production hardening (manage.py check --deploy is clean with DEBUG off).
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
