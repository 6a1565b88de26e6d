"""`make demo`: the whole site on one machine, offline, in one command.

What it starts (and stops again on Ctrl-C):
  * the database: DATABASE_URL if set, else SQLite in var/demo.sqlite3 (demo only);
  * Redis: REDIS_URL if reachable, else a local `redis-server` on 127.0.0.1:6390 when one is installed,
    else jobs run inside the web process (a warning says so: no queue, one generation at a time);
  * one RQ worker on the `generation` queue (SimpleWorker: the model stays loaded across jobs);
  * the Django development server on http://127.0.0.1:8000 (loopback only).
The default model is a *tiny fixture model* built offline from configs with random weights: it shows the
whole loop (queue, progress, PNG metadata, CLIP score, gallery) but its pictures are noise-like, not
characters. Register real weights with `manage.py add_model --name sd21 --path /path/or/hub-id --default`.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VAR = REPO / "var"
MODELS = VAR / "models"
DEMO_USER, DEMO_PASSWORD = "demo", "retro-demo-1985"
HOST, PORT = "127.0.0.1", int(os.environ.get("PORT", "8000"))
LOCAL_REDIS_PORT = 6390


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:
        return False


def choose_redis(env: dict, children: list) -> None:
    url = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if redis_reachable(url):
        say(f"Redis: {url}")
        env["REDIS_URL"] = url
        return
    server = shutil.which("redis-server")
    if server:
        local = f"redis://127.0.0.1:{LOCAL_REDIS_PORT}/0"
        children.append(subprocess.Popen(
            [server, "--bind", "127.0.0.1", "--port", str(LOCAL_REDIS_PORT), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        ))
        for _ in range(50):
            if redis_reachable(local):
                break
            time.sleep(0.1)
        say(f"Redis: no server at {url}; started a local redis-server at {local}")
        env["REDIS_URL"] = local
        return
    say("WARNING: no Redis reachable and no redis-server installed: jobs run inside the web process "
        "(no queue, one generation at a time). Install Redis for the real setup.")
    env["RETROPORTAL_RUN_JOBS_INLINE"] = "1"


def manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, str(REPO / "manage.py"), *args], cwd=REPO, env=env, check=True)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) != 0


def prepare(env: dict) -> None:
    VAR.mkdir(exist_ok=True)
    manage(env, "migrate", "--noinput", "-v", "0")
    if not (MODELS / "sd1" / "model_index.json").exists():
        say("Building the tiny offline fixture models (a few seconds)…")
        manage(env, "make_tiny_models", "--out", str(MODELS))
    manage(env, "add_model", "--name", "tiny-sd1", "--path", str(MODELS / "sd1"), "--default")
    manage(env, "shell", "-c", (
        "from django.contrib.auth import get_user_model; U = get_user_model(); "
        f"u = U.objects.filter(username='{DEMO_USER}').first() or U.objects.create_user('{DEMO_USER}'); "
        f"u.set_password('{DEMO_PASSWORD}'); u.save()"
    ))


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DEBUG", "1")
    env.setdefault("SECRET_KEY", "demo-only-not-secret")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("RETROPORTAL_CLIP_MODEL", f"local-dir:{MODELS / 'clip'}")
    env.setdefault("RETROPORTAL_DEFAULT_MODEL", "tiny-sd1")
    if not port_free(PORT):
        say(f"Port {PORT} on {HOST} is taken; stop what runs there or set PORT=8001 make demo")
        return 2
    children: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run the clean-up below on `kill` too, not only Ctrl-C
    try:
        choose_redis(env, children)
        prepare(env)
        if env.get("RETROPORTAL_RUN_JOBS_INLINE") != "1":
            children.append(subprocess.Popen(
                [sys.executable, "manage.py", "rqworker", "generation", "--worker-class", "rq.worker.SimpleWorker"],
                cwd=REPO, env=env,
            ))
        say(f"Default model: tiny-sd1 — a tiny fixture model with random weights (noise-like pictures).")
        say(f"Open http://{HOST}:{PORT}/ and sign in as {DEMO_USER} / {DEMO_PASSWORD}. Ctrl-C stops everything.")
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"], cwd=REPO, env=env
        )
        children.append(server)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
