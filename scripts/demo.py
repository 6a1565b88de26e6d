"""`make demo`: the whole site on one machine, offline, in one command.

What it starts (and stops again on Ctrl-C):
  * the database: DATABASE_URL if set, else SQLite in var/demo.sqlite3 (demo only);
  * Redis: REDIS_URL if reachable, else a local `redis-server` on 127.0.0.1:6390 when one is installed,
    else jobs run inside the web process (a warning says so: no queue, one generation at a time);
  * one RQ worker on the `generation` queue (SimpleWorker: the model stays loaded across jobs) and one on the
    `training` queue (dataset preparation and DreamBooth runs started from the admin);
  * the Django development server on http://127.0.0.1:8000 (loopback only).
The default model is `miniworld-retro` — the shipped mini-world model (training/miniworld/weights: a tiny Stable
Diffusion pretrained on the procedural mini-world, plus its retro DreamBooth LoRA), 64 px retro anime bust
portraits; `miniworld-base` (modern style) is registered beside it, and CLIP scores come from the shipped mini-CLIP
trained on the world's captions. Without the shipped weights the default is the *tiny fixture model* built offline
from configs with random weights, which shows the whole loop (queue, progress, PNG metadata, CLIP score, gallery)
but draws noise. Register real weights with `manage.py add_model --name sd21 --path /path/or/hub-id --default`.
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
ADMIN_USER, ADMIN_PASSWORD = "admin", "retro-admin-1985"  # demo only: the site listens on loopback
HOST, PORT = "127.0.0.1", int(os.environ.get("PORT", "8000"))
LOCAL_REDIS_PORT = 6390
sys.path.insert(0, str(REPO))
from training.miniworld import shipped  # noqa: E402  (plain paths; imports no Django and no torch)

BASE_MODEL = shipped.BASE
BASE_DESCRIPTION = ("Base mini model: a tiny Stable Diffusion with a frozen mini-CLIP text encoder, pretrained on the "
                    "procedural mini-world; 64 px modern-style anime bust portraits. Prompt like: a young girl with "
                    "pink long hair, wearing a ribbon, red shirt, on a beach.")


RETRO_DESCRIPTION = ("Retro mini model: the base mini model with its retro DreamBooth LoRA (made by manage.py "
                     "miniworld_bench through the training path). Prompt like: retro anime style, an old man with "
                     "glasses in a market.")


def default_model() -> str:
    model = shipped.default_model()
    if model is None:
        return "tiny-sd1"
    return "miniworld-retro" if model[1] else "miniworld-base"


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
    default = default_model()
    manage(env, "add_model", "--name", "tiny-sd1", "--path", str(MODELS / "sd1"),
           *(["--default"] if default == "tiny-sd1" else []))
    if default != "tiny-sd1":
        manage(env, "add_model", "--name", "miniworld-base", "--path", str(BASE_MODEL),
               *(["--default"] if default == "miniworld-base" else []), "--description", BASE_DESCRIPTION)
    if default == "miniworld-retro":
        guidance = shipped.retro_guidance_scale()
        manage(env, "add_model", "--name", "miniworld-retro", "--lora-of", "miniworld-base", "--path",
               str(shipped.RETRO_LORA), "--lora-scale", str(shipped.retro_lora_scale()), "--default",
               *([] if guidance is None else ["--default-guidance-scale", str(guidance)]),
               "--description", RETRO_DESCRIPTION)
    manage(env, "shell", "-c", (
        "from django.contrib.auth import get_user_model; U = get_user_model(); "
        f"u = U.objects.filter(username='{DEMO_USER}').first() or U.objects.create_user('{DEMO_USER}'); "
        f"u.set_password('{DEMO_PASSWORD}'); u.save(); "
        f"a = U.objects.filter(username='{ADMIN_USER}').first() or U(username='{ADMIN_USER}'); "
        f"a.is_staff = a.is_superuser = True; a.set_password('{ADMIN_PASSWORD}'); a.save()"
    ))


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DEBUG", "1")
    env.setdefault("SECRET_KEY", "demo-only-not-secret")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("RETROPORTAL_CLIP_MODEL", shipped.miniclip_spec() or f"local-dir:{MODELS / 'clip'}")
    env.setdefault("RETROPORTAL_DEFAULT_MODEL", default_model())
    if not port_free(PORT):
        say(f"Port {PORT} on {HOST} is taken; stop what runs there or set PORT=8001 make demo")
        return 2
    children: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run the clean-up below on `kill` too, not only Ctrl-C
    try:
        choose_redis(env, children)
        prepare(env)
        if env.get("RETROPORTAL_RUN_JOBS_INLINE") != "1":
            for queue in ("generation", "training"):
                children.append(subprocess.Popen(
                    [sys.executable, "manage.py", "rqworker", queue, "--worker-class", "rq.worker.SimpleWorker"],
                    cwd=REPO, env=env,
                ))
        if default_model() == "miniworld-retro":
            say("Default model: miniworld-retro — the shipped base mini model with its retro LoRA "
                f"({shipped.WEIGHTS.relative_to(REPO)}), 64 px retro mini-world portraits; miniworld-base (modern) "
                "and tiny-sd1 (random weights) are registered too. CLIP scores: the shipped mini-CLIP.")
        elif default_model() == "miniworld-base":
            say(f"Default model: miniworld-base — the shipped base mini model ({BASE_MODEL.relative_to(REPO)}), "
                "64 px modern-style mini-world portraits; tiny-sd1 (random weights) is registered too.")
        else:
            say("Default model: tiny-sd1 — a tiny fixture model with random weights (noise-like pictures); "
                f"no shipped base mini model in {BASE_MODEL.relative_to(REPO)}.")
        say(f"Open http://{HOST}:{PORT}/ and sign in as {DEMO_USER} / {DEMO_PASSWORD}. Ctrl-C stops everything.")
        say(f"Admin (datasets, DreamBooth training): http://{HOST}:{PORT}/admin/ as {ADMIN_USER} / {ADMIN_PASSWORD}; "
            "a worker listens on the 'training' queue.")
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
