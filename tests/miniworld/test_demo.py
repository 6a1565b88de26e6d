"""`make demo` as a new user meets it: scripts/demo.py starts worker and site offline, registers the shipped
mini-world model as the default, and "retro anime style, an old man with glasses in a market" comes back as
retro pictures with a mini-CLIP score. Runs against its own PostgreSQL database and this test worker's Redis db,
emptied (never SQLite)."""
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
import requests
from PIL import Image
from rq import Queue, Worker

from training.miniworld import shipped
from training.miniworld.classifier import classify

REPO = Path(__file__).resolve().parents[2]
PROMPT = "retro anime style, an old man with glasses in a market"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def demo_database():
    name = f"retroportal_demo_{uuid.uuid4().hex[:8]}"
    admin = "postgres://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgres://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait_up(url: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"demo exited with {proc.returncode}"
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)
    raise AssertionError(f"demo site not up at {url} after {timeout} s")


def _login(base: str, username: str = "demo", password: str = "retro-demo-1985") -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/accounts/login/", timeout=10).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = session.post(f"{base}/accounts/login/", timeout=10, headers={"Referer": f"{base}/accounts/login/"},
                            data={"csrfmiddlewaretoken": token, "username": username, "password": password})
    assert response.ok and "sessionid" in session.cookies
    session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
    session.headers["Referer"] = base + "/"
    return session


def _generate(session: requests.Session, base: str) -> dict:
    response = session.post(f"{base}/api/generations/", timeout=10,
                            json={"prompt": PROMPT, "num_images": 4, "steps": 20, "seed": 1})  # size: the model's
    assert response.status_code == 202, response.text
    job_url = f"{base}/api/generations/{response.json()['id']}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = session.get(job_url, timeout=10).json()
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(1)
    raise AssertionError(f"generation not finished after 180 s: {job}")


def test_make_demo_serves_the_shipped_retro_model_offline(demo_database, redis_clean, tmp_path, settings):
    assert shipped.default_model() == (str(shipped.BASE), str(shipped.RETRO_LORA))
    port = _free_port()
    # this xdist worker's own Redis db: a fixed db was another worker's (REDIS_URL=…/13 made gw0's db 13), whose
    # sweep test then lost its training jobs to the demo's worker and the demo its generation job to the sweep's
    env = dict(os.environ, DATABASE_URL=demo_database, REDIS_URL=settings.REDIS_URL, PORT=str(port),
               MEDIA_ROOT=str(tmp_path / "media"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    for name in ("DJANGO_SETTINGS_MODULE", "RETROPORTAL_CLIP_MODEL", "RETROPORTAL_DEFAULT_MODEL", "DEBUG"):
        env.pop(name, None)
    log = open(tmp_path / "demo.log", "w")
    proc = subprocess.Popen([sys.executable, "scripts/demo.py"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(f"{base}/accounts/login/", proc)
        started = time.monotonic()
        session = _login(base)
        job = _generate(session, base)
        seconds = time.monotonic() - started
        assert job["status"] == "done", job
        assert job["parameters"]["model"] == "miniworld-retro"
        assert job["parameters"]["guidance_scale"] == shipped.retro_guidance_scale()  # the CFG its card measured
        images = [Image.open(io.BytesIO(session.get(im["url"], timeout=10).content)) for im in job["images"]]
        assert [im.size for im in images] == [(64, 64)] * 4
        assert all(im["clip_score"] is not None for im in job["images"])  # the shipped mini-CLIP scored them
        preds = classify(images)
        print(f"demo: 4 pictures in {seconds:.0f} s after sign-in; classifier reads {preds}")
        assert sum(p["style"] == "retro" for p in preds) >= 3
        assert sum(p["background"] == "market" for p in preds) >= 3
        assert sum(p["age"] == "old" and p["glasses"] == "yes" for p in preds) >= 3
        # a newcomer can try training: the documented admin account signs in, a worker listens on 'training'
        assert _login(base, "admin", "retro-admin-1985").get(f"{base}/admin/training/", timeout=10).status_code == 200
        queue = Queue("training", connection=redis.Redis.from_url(env["REDIS_URL"]))
        assert Worker.all(connection=queue.connection, queue=queue)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    assert "Default model: miniworld-retro" in (tmp_path / "demo.log").read_text()
