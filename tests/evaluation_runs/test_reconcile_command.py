"""manage.py reconcile_runs also fails evaluations whose worker died (nobody has to open a page for it)."""
from django.core.management import call_command

from training.models import Evaluation


def test_reconcile_runs_fails_a_running_evaluation_without_heartbeat(db, redis_clean, capsys):
    # "running" on a worker that left no heartbeat in Redis: it was killed, or its host went away.
    orphan = Evaluation.objects.create(name="orphan/checkpoint-2", status=Evaluation.Status.RUNNING,
                                       worker_name="gone-worker")
    call_command("reconcile_runs")
    orphan.refresh_from_db()
    assert orphan.status == Evaluation.Status.FAILED and orphan.error
    assert "failed 1 evaluation(s)" in capsys.readouterr().out
