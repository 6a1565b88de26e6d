"""Faults on a production-like stack with private services: nothing accepted is lost, the site holds up.

One module-wide stack (tests/robustness/stack.py): a throwaway PostgreSQL cluster and a private
redis-server on free loopback ports, gunicorn with production settings, `reconcile_jobs --loop 1`; each
test starts the RQ workers it needs. The shared PostgreSQL/Redis are never touched.

What happens to a job whose worker is killed (kill -9) mid-job: it ends **failed, with the reason**
("The worker running this job stopped unexpectedly …") as soon as its heartbeat key expires — the periodic
reconciler does it, no page needs to be open. It is not re-run automatically: it may have been killed by
the job itself (out of memory), and re-running it could kill the next worker too. Jobs that were only
*queued* when Redis lost them are queued again and end done.
"""
import signal

import pytest

from benchmarks.loadtest import simulate
from tests.robustness.stack import PrivatePostgres, PrivateRedis, Stack, job_id_from, make_tmp, wait_until

pytestmark = pytest.mark.slow

USERS = ["ann", "ben", "load00", "load01", "load02"]
SLOW = dict(steps=100, width=256, height=256)  # ~1 s per step on one thread: time to kill it mid-job


@pytest.fixture(scope="module")
def stack(tiny_assets):
    import shutil

    root = make_tmp("retroportal-faults-")
    pg = PrivatePostgres(root / "pg")
    redis_server = None
    site = None
    try:
        pg.createdb()
        redis_server = PrivateRedis(root / "redis")
        site = Stack(pg.url(), redis_server.url(), root / "site", tiny_assets["model"], tiny_assets["clip"])
        site.pg, site.redis = pg, redis_server
        site.prepare(users=USERS)
        site.start_site(workers=2)
        site.reconciler = site.start_reconciler(every=1)
        yield site
    finally:
        if site is not None:
            site.stop()
        if redis_server is not None:
            redis_server.destroy()
        pg.destroy()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def worker(stack):
    proc = stack.start_worker()
    yield proc
    proc.stop()


def job_rows(stack, ids):
    rows = stack.db_rows("SELECT id::text, status, error FROM generator_generationjob WHERE id::text = ANY(%s)",
                         list(ids))
    return {pk: (status, error) for pk, status, error in rows}


def wait_final(stack, ids, timeout=120, proc=None):
    try:
        return wait_until(lambda: (rows := job_rows(stack, ids)) and len(rows) == len(ids)
                          and all(s in ("done", "failed", "cancelled") for s, _ in rows.values()) and rows,
                          timeout, 0.5, message=f"jobs {ids} to finish")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {job_rows(stack, ids)}\n{proc.log()[-3000:] if proc else ''}") from None


def test_flushall_with_jobs_queued_requeues_and_every_job_ends_done(stack):
    ann = stack.client("ann")
    ids = [job_id_from(ann.generate(f"retro anime style, flushed {i}", seed=i)) for i in range(3)]
    assert all(ids) and {s for s, _ in job_rows(stack, ids).values()} == {"queued"}
    redis = stack.redis.client()
    assert all(redis.exists(f"rq:job:gen-{pk}") for pk in ids)
    redis.flushall()  # our private Redis: the queue is gone
    # The periodic reconciler queues them again from their rows (they hold every parameter).
    wait_until(lambda: all(redis.exists(f"rq:job:gen-{pk}") for pk in ids), 30,
               message=f"re-queue after FLUSHALL:\n{stack.reconciler.log()[-2000:]}")
    assert "queued -> re-queued" in stack.reconciler.log()
    worker = stack.start_worker()
    try:
        rows = wait_final(stack, ids, proc=worker)
    finally:
        worker.stop()
    assert {s for s, _ in rows.values()} == {"done"}, rows
    status = ann.get(f"/jobs/{ids[0]}/status.json").json()
    assert status["status"] == "done" and len(status["images"]) == 1

    # Private media under gunicorn: the owner gets the PNG, another user 404, anonymous the sign-in page.
    file_url = status["images"][0]["file_url"]
    owner = ann.get(file_url)
    assert owner.status_code == 200 and owner.content.startswith(b"\x89PNG")
    assert stack.client("ben").get(file_url).status_code == 404
    anonymous = stack.client().get(file_url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous.headers["Location"]
    assert stack.client("ben").get(f"/jobs/{ids[0]}/").status_code == 404


def test_worker_killed_mid_job_ends_failed_with_reason_and_the_next_worker_carries_on(stack):
    ann = stack.client("ann")
    worker = stack.start_worker()
    try:
        doomed = job_id_from(ann.generate("retro anime style, the worker dies", **SLOW))
        wait_until(lambda: stack.db_rows("SELECT status = 'running' AND progress_step >= 1 "
                                         "FROM generator_generationjob WHERE id = %s", doomed)[0][0],
                   120, 0.3, message="the slow job to start")
        worker.kill(signal.SIGKILL)
        # No page is open: the periodic reconciler notices the dead worker (heartbeat TTL 3 s).
        rows = wait_final(stack, [doomed], timeout=30)
    finally:
        worker.stop()
    status, error = rows[doomed]
    assert status == "failed" and "stopped unexpectedly" in error, rows
    page = ann.get(f"/jobs/{doomed}/")
    assert page.status_code == 200 and "stopped unexpectedly" in page.text
    # A new worker takes the next job as usual.
    worker = stack.start_worker()
    try:
        fresh = job_id_from(ann.generate("retro anime style, after the crash"))
        assert wait_final(stack, [fresh], proc=worker)[fresh][0] == "done"
    finally:
        worker.stop()


def test_postgres_down_answers_503_then_recovers_without_restarting_the_site(stack, worker):
    ann = stack.client("ann")
    assert ann.get("/gallery/").status_code == 200
    pid = stack.site.proc.pid
    stack.pg.stop()
    try:
        for path in ("/gallery/", "/generate/", "/jobs/", "/explore/"):
            response = ann.get(path)
            assert response.status_code == 503, (path, response.status_code, response.text[:500])
            assert "database is unavailable" in response.text and "Traceback" not in response.text
            assert int(response.headers["Retry-After"]) > 0
        api = ann.get("/api/generations/")
        assert api.status_code == 503 and api.json()["detail"].startswith("The site's database is unavailable")
        wait_until(lambda: "reconcile skipped" in stack.reconciler.log(), 15, message="the reconciler to notice")
    finally:
        stack.pg.start()
    # Same gunicorn, no restart: the next requests connect again.
    wait_until(lambda: ann.get("/gallery/").status_code == 200, 30, message="the site to recover")
    assert stack.site.alive() and stack.site.proc.pid == pid and stack.reconciler.alive()
    # The worker that was idle through the outage still runs the next job.
    job = job_id_from(ann.generate("retro anime style, after the outage"))
    assert job and wait_final(stack, [job], proc=worker)[job][0] == "done"


def test_load_smoke_three_users_one_job_each(stack, worker):
    result = simulate(stack, users=3, jobs=1, time_limit=60)
    assert result["accepted"] == 3 and result["outcome"] == {"done": 3}, result
    assert not result["errors"] and not result["probe_failed"] and not result["unfinished"]
