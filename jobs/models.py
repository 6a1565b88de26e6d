"""The abstract row every kind of queued work shares, and the one status vocabulary.

A kind lists the states it uses (its own `Status` choices, drawn from these words) and the actions each
state allows (`STATE_ACTIONS`, documented in docs/jobs.md); everything about queueing and worker death is
handled by jobs.core on these fields.
"""
from django.db import models

# The one vocabulary. The lifecycle states jobs.core moves rows through:
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
# and the states a kind may add before or after it: nothing queued yet, and stopped but resumable.
DRAFT, UPLOADED, INTERRUPTED = "draft", "uploaded", "interrupted"
VOCABULARY = (DRAFT, UPLOADED, QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED)
ACTIVE = (QUEUED, RUNNING)


class QueuedJob(models.Model):
    """A unit of work run by an RQ worker. The row is the truth; Redis only carries the job id to a worker."""

    status = models.CharField(max_length=16, default=QUEUED, db_index=True)  # each kind sets its choices
    rq_job_id = models.CharField(max_length=100, blank=True)
    worker_name = models.CharField(max_length=200, blank=True)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="When the row was last queued.")
    enqueued_at = models.DateTimeField(null=True, blank=True, help_text="When Redis accepted its job.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # {state: (action, ...)}: what a user or admin may do to a row in each state (docs/jobs.md).
    STATE_ACTIONS: dict[str, tuple[str, ...]] = {}

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    def allows(self, action: str) -> bool:
        """Whether the row's state table allows `action` now (a cancel already asked for is not offered twice)."""
        if action == "cancel" and self.cancel_requested:
            return False
        return action in self.STATE_ACTIONS.get(self.status, ())

    @classmethod
    def states_allowing(cls, action: str) -> tuple[str, ...]:
        return tuple(state for state, actions in cls.STATE_ACTIONS.items() if action in actions)

    def allowed_actions(self) -> list[str]:
        return [a for a in dict.fromkeys(a for acts in self.STATE_ACTIONS.values() for a in acts) if self.allows(a)]
