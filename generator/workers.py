"""Whether an RQ worker listens on a queue (RQ's worker registry in Redis), and what to say when none does.

A queued job with nobody to run it waits forever in silence: the pages where that matters ask here and
show the command that starts a worker.
"""
from django.conf import settings


def listening(queue_name: str) -> bool | None:
    """True/False: a live worker is registered for `queue_name`; None when Redis cannot be asked (or jobs
    run inline in the web process, the demo without Redis) — then nothing useful can be said."""
    if settings.RETROPORTAL_RUN_JOBS_INLINE:
        return None
    import django_rq
    from redis.exceptions import RedisError
    from rq import Worker

    try:
        queue = django_rq.get_queue(queue_name)
        # Worker.all drops registry entries whose worker key expired (a killed worker); count() would not.
        return bool(Worker.all(connection=queue.connection, queue=queue))
    except (RedisError, OSError):
        return None


def missing_worker_message(queue_name: str) -> str:
    """The warning for a queue nobody listens on ('' when a worker listens, or when it cannot be known)."""
    if listening(queue_name) is not False:
        return ""
    return (f"No worker is listening on the '{queue_name}' queue — start one with "
            f"`manage.py rqworker {queue_name}`; queued work waits until then.")
