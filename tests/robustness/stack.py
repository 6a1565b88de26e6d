"""A production-like stack on loopback for fault and load tests, with *private* services.

PrivatePostgres — a throwaway cluster (initdb + pg_ctl on a free port, socket in a temp dir, run as the
`postgres` user when we are root); PrivateRedis — `redis-server --port N --save ''`; Site — gunicorn with
production settings (DEBUG off, whitenoise after collectstatic) on 127.0.0.1; Worker and Reconciler —
`manage.py rqworker` and `manage.py reconcile_jobs --loop`. Shared servers are never touched: tests may
stop, kill or FLUSHALL these as they like. Browser-less HTTP client: `SiteClient` (requests) — it sends
`X-Forwarded-Proto: https` as a TLS-terminating proxy would (the production settings keep secure cookies,
SSL redirect and CSRF's Referer check on), and keeps cookies itself.
"""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=60.0, interval=0.2, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}")


def _as_postgres(cmd):
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


class PrivatePostgres:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.data = self.root / "pgdata"
        self.sock = self.root / "pgsock"
        self.port = free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        self.sock.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            for path in (self.root, self.sock):
                os.chown(path, pg.pw_uid, pg.pw_gid)
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                                     "--no-sync", "-E", "UTF8"]), check=True, capture_output=True)
        self.start()

    def url(self, dbname="retroportal") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self):
        opts = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
                                     str(self.root / "pg.log"), "-w", "start"]), check=True, capture_output=True)

    def stop(self):
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True)

    def createdb(self, name="retroportal"):
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def destroy(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    def __init__(self, root: Path):
        self.port = free_port()
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.root)], stdout=open(self.root / "redis.log", "w"), stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_until(lambda: self.client().ping(), 20, message="private redis")

    def url(self, db=0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=2)

    def destroy(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Proc:
    """A child process in its own session, logging to a file; stopped by its process group id."""

    def __init__(self, name, cmd, env, logdir: Path):
        self.name = name
        self.log_path = Path(logdir) / f"{name}-{int(time.time() * 1000)}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            os.killpg(self.proc.pid, sig)
            self.proc.wait(30)

    def stop(self):
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


class Stack:
    """Settings environment + the processes of one site: gunicorn, workers, reconciler."""

    def __init__(self, database_url, redis_url, workdir: Path, model_path, clip_spec, extra_env=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO"))}
        self.env.update(
            DJANGO_SETTINGS_MODULE="retroportal.settings", DEBUG="0",
            SECRET_KEY="robustness-" + "k" * 50, ALLOWED_HOSTS="127.0.0.1,localhost",
            DATABASE_URL=database_url, REDIS_URL=redis_url, MEDIA_ROOT=str(self.workdir / "media"),
            STATIC_ROOT=str(self.workdir / "static"), RETROPORTAL_CLIP_MODEL=clip_spec,
            RETROPORTAL_JOB_HEARTBEAT_TTL="3", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1",
            DATABASE_CONNECT_TIMEOUT="3", LOG_LEVEL="WARNING",
        )
        self.env.update(extra_env or {})
        self.model_path = str(model_path)
        self.procs = []
        self.site = None
        self.port = None

    def manage(self, *args, check=True, timeout=300):
        result = subprocess.run([PYTHON, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def prepare(self, users=(), password="Retro-pass-1985!"):
        """Migrate, collect static files, register the tiny model as default, create users."""
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput")
        script = (
            "from django.contrib.auth import get_user_model\n"
            "from generator.models import AIModel\n"
            f"AIModel.objects.update_or_create(name='tiny', defaults=dict(source={self.model_path!r}, "
            "architecture='sd1', is_default=True, native_size=64))\n"
            "U = get_user_model()\n"
            f"for name in {list(users)!r}:\n"
            f"    U.objects.filter(username=name).exists() or U.objects.create_user(name, password={password!r})\n"
        )
        self.manage("shell", "-c", script)
        self.password = password

    def start_site(self, workers=2, threads=1):
        self.port = free_port()
        cmd = [GUNICORN, "retroportal.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
               "--workers", str(workers), "--threads", str(threads), "--timeout", "60", "--graceful-timeout", "5"]
        self.site = Proc("gunicorn", cmd, self.env, self.workdir)
        self.procs.append(self.site)
        wait_until(lambda: requests.get(self.base + "/accounts/login/", timeout=2,
                                        headers={"X-Forwarded-Proto": "https"}).status_code == 200,
                   60, message=f"gunicorn on {self.port}:\n{self.site.log()[-2000:]}")
        return self.site

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_worker(self):
        proc = Proc("worker", [PYTHON, "manage.py", "rqworker", "generation", "--worker-class",
                               "rq.worker.SimpleWorker"], self.env, self.workdir)
        self.procs.append(proc)
        return proc

    def start_reconciler(self, every=1.0):
        proc = Proc("reconciler", [PYTHON, "manage.py", "reconcile_jobs", "--loop", str(every)], self.env,
                    self.workdir)
        self.procs.append(proc)
        return proc

    def client(self, username=None) -> "SiteClient":
        c = SiteClient(self.base)
        if username:
            c.login(username, self.password)
        return c

    def db_rows(self, sql, *params):
        import psycopg

        with psycopg.connect(self.env["DATABASE_URL"], connect_timeout=3) as conn:
            return conn.execute(sql, params).fetchall()

    def stop(self):
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()


CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class SiteClient:
    """A signed-in browser without the browser: cookies kept by hand (they are Secure), CSRF from the forms."""

    def __init__(self, base):
        self.base = base
        self.http = requests.Session()
        self.cookies = {}

    def request(self, method, path, **kwargs):
        headers = {"X-Forwarded-Proto": "https", "Referer": self.base.replace("http://", "https://", 1) + path.split("?")[0],
                   **kwargs.pop("headers", {})}
        self.http.cookies.clear()
        response = self.http.request(method, self.base + path, headers=headers, cookies=dict(self.cookies),
                                     allow_redirects=False, timeout=kwargs.pop("timeout", 30), **kwargs)
        for cookie in response.cookies:
            if cookie.value:
                self.cookies[cookie.name] = cookie.value
            else:
                self.cookies.pop(cookie.name, None)
        return response

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post_form(self, path, data, form_path=None):
        """GET the page holding the form (for its CSRF token), then POST it."""
        page = self.get(form_path or path)
        match = CSRF_INPUT.search(page.text)
        assert match, f"no CSRF token on {form_path or path} ({page.status_code})"
        return self.request("POST", path, data={**data, "csrfmiddlewaretoken": match.group(1)})

    def login(self, username, password):
        response = self.post_form("/accounts/login/", {"username": username, "password": password})
        assert response.status_code == 302, f"login failed for {username}: {response.status_code}"
        return response

    def generate(self, prompt, **fields):
        data = dict(prompt=prompt, negative_prompt="", model="tiny", seed=7, steps=2, guidance_scale=7.0, width=64,
                    height=64, num_images=1, scheduler="euler")
        data.update(fields)
        return self.post_form("/generate/", data)


def job_id_from(response) -> str | None:
    match = re.search(r"/jobs/([0-9a-f-]{36})/", response.headers.get("Location", ""))
    return match.group(1) if match else None


def make_tmp(prefix) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o755)
    return path
