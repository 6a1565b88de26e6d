"""Shared test infrastructure: real PostgreSQL, real Redis, a real RQ worker process, headless Chromium.

Nothing here fakes a service: tests that need the queue start `manage.py rqworker` as a subprocess
against the test database, and browser tests drive Debian's Chromium through Playwright.
"""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny models on a busy 2-core machine: 1 thread is far faster
REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"


def shot(page, name, docs=False):
    """A full-page screenshot to test-artifacts/<name>.png; a `docs` one also to docs/screenshots/ (committed),
    but only when RETROPORTAL_DOCS_SCREENSHOTS=1 asks to refresh them, so that test runs leave the tree clean."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    if docs and os.environ.get("RETROPORTAL_DOCS_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_SCREENSHOTS / f"{name}.png"), full_page=True)


def pytest_configure(config):
    import torch

    torch.set_num_threads(1)


def _check_services():
    import psycopg
    import redis
    from django.conf import settings

    db = settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname="postgres", connect_timeout=3
        ).close()
    except Exception as exc:
        pytest.exit(f"PostgreSQL is not reachable at {db['HOST']}:{db['PORT']} ({exc}); start it or set DATABASE_URL", 2)
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        pytest.exit(f"Redis is not reachable at {settings.REDIS_URL} ({exc}); start it or set REDIS_URL", 2)


@pytest.fixture(scope="session", autouse=True)
def _services_present():
    _check_services()


# Tiny Stable-Diffusion-architecture models and a tiny open_clip, built offline from configs with fixed
# seeds through generator.engine.tiny, once per test session (a second or two each).
@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny-models")


def _tiny_folder(root: Path, kind: str) -> Path:
    from generator.engine.tiny import save_tiny_model

    path = root / kind
    if not path.exists():
        save_tiny_model(kind, path)
    return path


@pytest.fixture(scope="session")
def tiny_sd1_path(tiny_models_dir):
    return _tiny_folder(tiny_models_dir, "sd1")


@pytest.fixture(scope="session")
def tiny_sd2_path(tiny_models_dir):
    return _tiny_folder(tiny_models_dir, "sd2")


@pytest.fixture(scope="session")
def tiny_sdxl_path(tiny_models_dir):
    return _tiny_folder(tiny_models_dir, "sdxl")


@pytest.fixture(scope="session")
def tiny_clip_dir(tiny_models_dir):
    from generator.engine.tiny import save_tiny_open_clip

    path = tiny_models_dir / "clip"
    if not path.exists():
        save_tiny_open_clip(path)
    return path


@pytest.fixture(scope="session")
def tiny_upscaler_path(tiny_models_dir):
    """A tiny random ESRGAN x2 upscaler as .safetensors, in the key layout spandrel detects (engine.tiny)."""
    from generator.engine.tiny import save_tiny_upscaler

    path = tiny_models_dir / "tiny-esrgan-x2.safetensors"
    if not path.exists():
        save_tiny_upscaler(path)
    return path


@pytest.fixture(scope="session")
def tiny_assets(tiny_sd1_path, tiny_clip_dir):
    """The tiny SD 1.x folder and the CLIP spec the web/API tests register and hand to workers."""
    return {"model": str(tiny_sd1_path), "clip": f"local-dir:{tiny_clip_dir}"}


@pytest.fixture
def redis_clean():
    """An empty Redis test database (REDIS_URL's db, 15 by default) before and after the test."""
    import django_rq

    conn = django_rq.get_connection("generation")
    conn.flushdb()
    yield conn
    conn.flushdb()


def worker_env(extra: dict | None = None) -> dict:
    """Environment for a subprocess that must see the test database, Redis db and media folder."""
    from django.conf import settings
    from django.db import connection

    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="retroportal.settings_test",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{connection.settings_dict['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    return env


class WorkerProcess:
    """A real `manage.py rqworker` subprocess (SimpleWorker: one process keeps models across jobs)."""

    def __init__(self, queues=("generation",), extra_env=None, log_path=None):
        self.log_path = log_path or (ARTIFACTS / f"worker-{int(time.time() * 1000)}.log")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        cmd = [sys.executable, str(REPO / "manage.py"), "rqworker", *queues,
               "--worker-class", "rq.worker.SimpleWorker", "--with-scheduler"]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=worker_env(extra_env), stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@pytest.fixture
def rq_worker(transactional_db, redis_clean):
    """Start a worker on the generation queue; the test sees committed rows, the worker the same DB."""
    worker = WorkerProcess()
    yield worker
    worker.stop()


def wait_for(predicate, timeout=120.0, interval=0.2, message="condition"):
    """Poll `predicate` until truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}")


CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (never `playwright install`: no downloads here)."""
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Chromium is not installed: `make test` installs Debian's chromium package (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()
