"""Bounded load test on loopback: N simulated users × M generations each through the real site.

    .venv/bin/python benchmarks/loadtest.py                    # 20 users × 3 jobs, 64 px, 2 steps
    .venv/bin/python benchmarks/loadtest.py --users 5 --jobs 2 --time-limit 120

What runs: gunicorn with production settings (DEBUG off, whitenoise, CSRF, secure cookies behind an
`X-Forwarded-Proto: https` proxy header) on 127.0.0.1 only, one real `manage.py rqworker` (SimpleWorker),
`manage.py reconcile_jobs --loop 2`, the tiny offline SD1 model and tiny open_clip (generator.engine.tiny).
Its own PostgreSQL database (LOAD_DATABASE_URL, default .../retroportal_load: dropped and created at
start, dropped at the end) and its own Redis db (LOAD_REDIS_URL, default db 11: FLUSHDB of that db only).

Each user (a thread with requests): signs in through the login form, then per job opens /generate/ and
posts the form (CSRF token from the page); then polls each job's status.json every 0.5 s, opening the
gallery every 4th poll, until every job is final; then opens its gallery and one job page. A probe thread
opens the sign-in page every 0.5 s throughout ("the site answers"). The number of generations is fixed;
polling stops at --time-limit. Prints accepted/refused/done/failed/lost, page latencies (p50/p95/max per
page kind; generation time is not a page latency) and the machine. Exit status 1 if a job was lost, a
job was left unfinished, or the probe saw a failure.
"""
import argparse
import datetime
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.robustness.stack import Stack, job_id_from, make_tmp  # noqa: E402

FINAL = {"done", "failed", "cancelled"}


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = defaultdict(list)
        self.errors = []

    def timed(self, kind, call):
        start = time.perf_counter()
        try:
            response = call()
        except Exception as exc:
            with self.lock:
                self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            return None
        elapsed = time.perf_counter() - start
        with self.lock:
            self.latency[kind].append(elapsed)
            if response.status_code >= 500:
                self.errors.append(f"{kind}: HTTP {response.status_code}")
        return response


def percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, int(round(q / 100 * len(values) + 0.5)) - 1))
    return values[index]


def simulate(stack: Stack, users: int, jobs: int, time_limit: float, seed: int = 0) -> dict:
    """Run the users against a started stack (site + worker). Returns the counts, latencies and job ids."""
    rec = Recorder()
    accepted, refused = [], []
    lock = threading.Lock()
    deadline = time.monotonic() + time_limit
    stop_probe = threading.Event()
    probe = {"ok": 0, "failed": []}

    def prober():
        client = stack.client()
        while not stop_probe.wait(0.5):
            response = rec.timed("probe (sign-in page)", lambda: client.get("/accounts/login/", timeout=10))
            if response is not None and response.status_code == 200:
                probe["ok"] += 1
            else:
                probe["failed"].append(getattr(response, "status_code", "no answer"))

    def user(index):
        rnd = random.Random(seed * 1000 + index)
        client = stack.client()
        response = rec.timed("sign in (POST)", lambda: client.login(f"load{index:02d}", stack.password))
        if response is None:
            return
        mine = []
        for j in range(jobs):
            time.sleep(rnd.uniform(0, 0.3))  # a little think time
            page = rec.timed("generate page", lambda: client.get("/generate/"))
            if page is None:
                continue
            posted = rec.timed("generate (POST)", lambda: client.generate(
                f"retro anime style, user {index} character {j}, 1980s cel shading", seed=index * 10 + j))
            job_id = job_id_from(posted) if posted is not None else None
            with lock:
                (accepted if job_id else refused).append(job_id or f"user {index}: {getattr(posted, 'status_code', '?')}")
            if job_id:
                mine.append(job_id)
        polls = 0
        pending = list(mine)
        while pending and time.monotonic() < deadline:
            for job_id in list(pending):
                status = rec.timed("job status.json", lambda: client.get(f"/jobs/{job_id}/status.json"))
                if status is not None and status.status_code == 200 and status.json()["status"] in FINAL:
                    pending.remove(job_id)
                polls += 1
                if polls % 4 == 0:
                    rec.timed("gallery page", lambda: client.get("/gallery/"))
            time.sleep(0.5)
        rec.timed("gallery page", lambda: client.get("/gallery/"))
        if mine:
            rec.timed("job page", lambda: client.get(f"/jobs/{mine[0]}/"))

    probe_thread = threading.Thread(target=prober, daemon=True)
    probe_thread.start()
    started = time.monotonic()
    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, deadline - time.monotonic() + 30))
    wall = time.monotonic() - started
    stop_probe.set()
    probe_thread.join(5)

    rows = {}
    if accepted:
        placeholders = ",".join(["%s"] * len(accepted))
        for pk, status, error in stack.db_rows(
            f"SELECT id::text, status, error FROM generator_generationjob WHERE id::text IN ({placeholders})", *accepted
        ):
            rows[pk] = (status, error)
    outcome = defaultdict(int)
    for pk in accepted:
        outcome[rows[pk][0] if pk in rows else "LOST"] += 1
    failed_without_reason = [pk for pk, (status, error) in rows.items() if status == "failed" and not error.strip()]
    return dict(
        users=users, jobs=jobs, wall=wall, accepted=len(accepted), refused=refused, outcome=dict(outcome),
        failed_without_reason=failed_without_reason,
        unfinished=[pk for pk in accepted if pk not in rows or rows[pk][0] not in FINAL],
        latency={kind: dict(n=len(v), p50=statistics.median(v), p95=percentile(v, 95), max=max(v))
                 for kind, v in rec.latency.items() if v},
        errors=rec.errors, probe_ok=probe["ok"], probe_failed=probe["failed"],
    )


def report(result: dict) -> str:
    lines = [
        f"users × jobs: {result['users']} × {result['jobs']} = {result['users'] * result['jobs']} generation requests",
        f"accepted {result['accepted']}, refused {len(result['refused'])}; outcome of accepted jobs: "
        + ", ".join(f"{k} {v}" for k, v in sorted(result["outcome"].items())),
        f"lost or unfinished: {len(result['unfinished'])}; failed without a reason: {len(result['failed_without_reason'])}",
        f"wall time {result['wall']:.1f} s; probe: {result['probe_ok']} answers OK, {len(result['probe_failed'])} failed; "
        f"5xx/exceptions: {len(result['errors'])}",
        "",
        "| page | requests | p50 ms | p95 ms | max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, s in sorted(result["latency"].items()):
        lines.append(f"| {kind} | {s['n']} | {s['p50'] * 1000:.0f} | {s['p95'] * 1000:.0f} | {s['max'] * 1000:.0f} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}; {platform.system()} {platform.release()}; Python {platform.python_version()}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--jobs", type=int, default=3, help="generations per user")
    p.add_argument("--time-limit", type=float, default=300, help="seconds for the users to finish (default 300)")
    p.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    p.add_argument("--web-threads", type=int, default=4)
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import psycopg
    import redis

    db_url = os.environ.get("LOAD_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/retroportal_load")
    redis_url = os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/11")
    admin_url, dbname = db_url.rsplit("/", 1)
    with psycopg.connect(admin_url + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    redis.Redis.from_url(redis_url).flushdb()

    from generator.engine.tiny import save_tiny_model, save_tiny_open_clip

    work = make_tmp("retroportal-load-")
    save_tiny_model("sd1", work / "sd1")
    save_tiny_open_clip(work / "clip")
    stack = Stack(db_url, redis_url, work / "site", work / "sd1", f"local-dir:{work / 'clip'}",
                  extra_env={"RETROPORTAL_JOB_HEARTBEAT_TTL": "10"})
    try:
        stack.prepare(users=[f"load{i:02d}" for i in range(args.users)])
        stack.start_site(workers=args.web_workers, threads=args.web_threads)
        worker = stack.start_worker()
        stack.start_reconciler(every=2)
        print(f"site {stack.base} (gunicorn {args.web_workers} workers × {args.web_threads} threads), 1 RQ worker",
              flush=True)
        result = simulate(stack, args.users, args.jobs, args.time_limit)
        if not worker.alive():
            print("the worker died:\n" + worker.log()[-3000:])
    finally:
        stack.stop()
        with psycopg.connect(admin_url + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        redis.Redis.from_url(redis_url).flushdb()
    print(f"machine: {machine()}")
    print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"command: {' '.join([os.path.relpath(sys.executable, REPO), *sys.argv])}")
    print(report(result))
    if result["errors"]:
        print("errors (first 10):", *result["errors"][:10], sep="\n  ")
    bad = (result["unfinished"] or result["failed_without_reason"] or result["probe_failed"] or result["errors"]
           or not result["accepted"])
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
