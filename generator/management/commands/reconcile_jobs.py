"""Bring unfinished jobs to a final state (or queue them again), once or every N seconds.

`manage.py reconcile_jobs` checks once (cron-friendly); `manage.py reconcile_jobs --loop 30` keeps running
and checks every 30 s, surviving PostgreSQL or Redis being away for a while (it logs and tries again).
"""
import logging
import signal
import threading

import redis
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from generator import services
from generator.models import GenerationJob

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = ("Check every queued or running generation job against Redis and the workers: queued jobs that Redis "
            "lost (flush, restart) are queued again; running jobs whose worker died or whose queue entry was lost "
            "are marked failed with the reason. Prints what it changed. --loop N repeats every N seconds.")

    def add_arguments(self, parser):
        parser.add_argument("--loop", type=float, metavar="SECONDS", default=0,
                            help="keep running, checking every SECONDS (Ctrl-C or SIGTERM stops it)")

    def handle(self, *args, **options):
        interval = options["loop"]
        if not interval:
            self.reconcile_once()
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"reconciling every {interval:g} s")
        while not stop.is_set():
            try:
                self.reconcile_once()
            except (DatabaseError, redis.exceptions.RedisError) as exc:
                # A service is away: say so and try again next round (never exit: it must be there after).
                self.stderr.write(f"reconcile skipped: {type(exc).__name__}: {exc}".strip())
            finally:
                close_old_connections()
            stop.wait(interval)

    def reconcile_once(self):
        pending = GenerationJob.objects.filter(
            status__in=[GenerationJob.Status.QUEUED, GenerationJob.Status.RUNNING]
        ).order_by("created_at")
        checked = changed = 0
        for job in pending.iterator():
            checked += 1
            before, before_rq = job.status, job.rq_job_id
            rq_known = services.rq_job_exists(job)
            job = services.reconcile(job)
            if job.status != before:
                changed += 1
                self.stdout.write(f"{job.pk}: {before} -> {job.status}" + (f" ({job.error})" if job.error else ""))
            elif job.status == GenerationJob.Status.QUEUED and (not rq_known) and services.rq_job_exists(job):
                changed += 1
                self.stdout.write(f"{job.pk}: queued -> re-queued" + ("" if before_rq else " (never reached Redis)"))
        self.stdout.write(f"checked {checked} unfinished job(s), changed {changed}")
        self.stdout.flush()
