"""The Redis key a worker keeps alive while it runs a row: how a killed worker is noticed in seconds.

RQ notices a dead SimpleWorker only when the job's TTL (its timeout + 60 s, hours for training) runs
out, so the process running a row refreshes its own key (TTL RETROPORTAL_JOB_HEARTBEAT_TTL) from a small
thread, and `alive` also looks at the worker's registration in Redis.
"""
import logging
import threading

import django_rq
from django.conf import settings
from rq.worker import Worker

log = logging.getLogger(__name__)


def alive_key(kind_name: str, pk) -> str:
    return f"retroportal:{kind_name}-alive:{pk}"


def alive(queue: str, key: str, worker_name: str = "") -> bool:
    """False once the process holding `key` is gone, or its worker is no longer registered."""
    conn = django_rq.get_connection(queue)
    if not conn.exists(key):
        return False
    if worker_name and worker_name != "inline":
        return bool(conn.exists(Worker.redis_worker_namespace_prefix + worker_name))
    return True


class Heartbeat:
    """Keep `key` in Redis while this process works on a row (nothing to do when jobs run inline)."""

    def __init__(self, queue: str, key: str):
        self.queue, self.key = queue, key
        self.ttl = max(2, int(settings.RETROPORTAL_JOB_HEARTBEAT_TTL))
        self.stop = threading.Event()
        self.thread = None
        self.conn = None

    def __enter__(self):
        if settings.RETROPORTAL_RUN_JOBS_INLINE:
            return self
        self.conn = django_rq.get_connection(self.queue)
        self.conn.set(self.key, "1", ex=self.ttl)
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat {self.key}", daemon=True)
        self.thread.start()
        return self

    def _beat(self):
        while not self.stop.wait(self.ttl / 3):
            try:
                self.conn.set(self.key, "1", ex=self.ttl)
            except Exception:  # Redis briefly away: the next beat retries
                log.warning("job heartbeat %s failed", self.key, exc_info=True)

    def __exit__(self, *exc):
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
            try:
                self.conn.delete(self.key)
            except Exception:  # the key expires by itself
                pass
        return False
