"""manage.py reconcile_runs also fails evaluations whose worker died (nobody has to open a page for it)."""
import django_rq
from django.core.management import call_command

from training import run_evaluations
from training.models import Evaluation


def test_reconcile_runs_fails_a_running_evaluation_without_heartbeat(db, redis_clean, capsys):
    # "running" on a worker that left no heartbeat in Redis: it was killed, or its host went away. Its RQ
    # job is still in Redis (RQ itself has not noticed), so only the heartbeat tells.
    queue = django_rq.get_queue("generation", commit_mode="auto")
    rq_job = queue.enqueue("training.tasks.run_evaluation_job", 0, job_id="evaluation-0")
    orphan = Evaluation.objects.create(name="orphan/checkpoint-2", status=Evaluation.Status.RUNNING,
                                       worker_name="gone-worker", rq_job_id=rq_job.id)
    call_command("reconcile_runs")
    orphan.refresh_from_db()
    assert orphan.status == Evaluation.Status.FAILED and orphan.error == run_evaluations.STOPPED
    assert "failed 1 evaluation(s)" in capsys.readouterr().out
