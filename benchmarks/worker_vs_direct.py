"""Does the queue cost much? N warm jobs through Redis + the real RQ worker vs N direct engine calls.

    make bench                      # or: .venv/bin/python benchmarks/worker_vs_direct.py --jobs 5
    .venv/bin/python benchmarks/worker_vs_direct.py --size 128 --steps 10 --jobs 5

Uses the tiny offline SD1 model and tiny open_clip from generator.engine.tiny (built once into
var/bench/), a dedicated PostgreSQL database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/retroportal_bench, created and migrated if missing) and a
dedicated Redis db (BENCH_REDIS_URL, default redis://127.0.0.1:6379/12, flushed at start), so it
never touches the site's own data.

Worker side: one `manage.py rqworker generation --worker-class rq.worker.SimpleWorker` subprocess;
after one warm-up job (model and CLIP load), each job is timed from submit_generation() to the
row reading `done` (so it includes Redis, the DB, progress writes, CLIP scoring, PNG storage).
Direct side: the same engine generate() on a model loaded once in this process, after a warm-up.
Prints both, the ratio (target <= 1.2) and the machine. Timings are printed, never asserted.
"""
import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VAR = REPO / "var" / "bench"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=5, help="timed jobs on each side (default 5)")
    p.add_argument("--size", type=int, default=128, help="width = height in pixels (default 128)")
    p.add_argument("--steps", type=int, default=10, help="denoising steps (default 10)")
    p.add_argument("--scheduler", default="euler")
    return p.parse_args()


def configure_env():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    db_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/retroportal_bench")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="retroportal.settings",
        DEBUG="1",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-only-secret",
        DATABASE_URL=db_url,
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
        MEDIA_ROOT=str(VAR / "media"),
        RETROPORTAL_RUN_JOBS_INLINE="0",
        LOG_LEVEL="WARNING",
    )
    return db_url


def ensure_database(db_url):
    import dj_database_url
    import psycopg

    cfg = dj_database_url.parse(db_url)
    with psycopg.connect(host=cfg["HOST"], port=cfg["PORT"] or 5432, user=cfg["USER"], password=cfg["PASSWORD"] or None,
                         dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [cfg["NAME"]]).fetchone():
            conn.execute(f'CREATE DATABASE "{cfg["NAME"]}"')
            print(f"created database {cfg['NAME']}")


def tiny_assets():
    from generator.engine import tiny

    model_dir, clip_dir = VAR / "tiny-sd1", VAR / "tiny-clip"
    if not (model_dir / "model_index.json").is_file():
        tiny.save_tiny_model("sd1", model_dir, overwrite=True)
    if not (clip_dir / "open_clip_config.json").is_file():
        tiny.save_tiny_open_clip(clip_dir, overwrite=True)
    return model_dir, f"local-dir:{clip_dir}"


def wait_done(job, timeout=600):
    from generator.models import GenerationJob

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, error = GenerationJob.objects.filter(pk=job.pk).values_list("status", "error").get()
        if status in GenerationJob.FINAL_STATES:
            if status != "done":
                raise SystemExit(f"job {job.pk} ended {status}: {error}")
            return
        time.sleep(0.01)
    raise SystemExit(f"job {job.pk} not done after {timeout}s; see {VAR / 'worker.log'}")


def main():
    args = parse_args()
    db_url = configure_env()
    VAR.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    ensure_database(db_url)
    model_dir, clip_spec = tiny_assets()
    os.environ["RETROPORTAL_CLIP_MODEL"] = clip_spec

    import django

    django.setup()
    import django_rq
    import torch
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from generator import services
    from generator.engine.generate import generate
    from generator.engine.loading import load_pipeline
    from generator.engine.params import GenerationParams
    from generator.models import AIModel

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    call_command("migrate", verbosity=0)
    django_rq.get_connection("generation").flushdb()
    user, _ = get_user_model().objects.get_or_create(username="bench")
    AIModel.objects.filter(is_default=True).exclude(name="bench-tiny-sd1").update(is_default=False)
    AIModel.objects.update_or_create(
        name="bench-tiny-sd1", defaults=dict(source=str(model_dir), is_active=True, is_default=True))

    def params(i):
        return GenerationParams(prompt=f"retro anime style, benchmark character {i}", seed=1000 + i,
                                steps=args.steps, width=args.size, height=args.size, scheduler=args.scheduler)

    # --- through Redis and the worker -----------------------------------------------------------
    log = open(VAR / "worker.log", "w")
    worker = subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), "rqworker", "generation", "--worker-class",
         "rq.worker.SimpleWorker"], cwd=REPO, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        t0 = time.monotonic()
        wait_done(services.submit_generation(user, params(-1), "bench-tiny-sd1"))
        warmup_worker = time.monotonic() - t0
        worker_times = []
        for i in range(args.jobs):
            t0 = time.monotonic()
            job = services.submit_generation(user, params(i), "bench-tiny-sd1")
            wait_done(job)
            worker_times.append(time.monotonic() - t0)
        from rq.job import Job

        job.refresh_from_db()
        loads = Job.fetch(job.rq_job_id, connection=django_rq.get_connection("generation")).get_meta()["model_loads"]
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
        log.close()

    # --- direct engine calls in this process ----------------------------------------------------
    t0 = time.monotonic()
    model = load_pipeline(str(model_dir), name="bench-tiny-sd1")
    generate(model, params(-1))
    warmup_direct = time.monotonic() - t0
    direct_times = []
    for i in range(args.jobs):
        t0 = time.monotonic()
        generate(model, params(i))
        direct_times.append(time.monotonic() - t0)

    w, d = statistics.median(worker_times), statistics.median(direct_times)
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, python {platform.python_version()}")
    print(f"workload: tiny SD1, {args.size}x{args.size}, {args.steps} steps, {args.scheduler}, 1 image; "
          f"{args.jobs} timed jobs each side after one warm-up")
    print(f"worker (Redis + RQ SimpleWorker + DB + CLIP + PNG storage): median {w:.3f} s/job "
          f"[{', '.join(f'{t:.3f}' for t in worker_times)}]; warm-up incl. loading {warmup_worker:.2f} s; "
          f"model loads in the worker: {loads}")
    print(f"direct generate() in-process:                       median {d:.3f} s/job "
          f"[{', '.join(f'{t:.3f}' for t in direct_times)}]; warm-up incl. loading {warmup_direct:.2f} s")
    print(f"ratio worker/direct: {w / d:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
