"""A worker killed in the middle of an evaluation: the row fails with the reason (never 'running' forever),
and evaluating the run again queues only that checkpoint, which a new worker finishes."""
import pytest
from django.core.management import call_command
from django.urls import reverse

from tests.conftest import wait_for
from tests.evaluation_runs.conftest import EVAL, start_worker
from training import run_evaluations, runs
from training.models import Evaluation

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_killed_evaluation_fails_with_the_reason_and_is_evaluated_again(make_run, worker, eval_settings, capsys,
                                                                          admin_client):
    run = make_run("kill-eval", max_steps=2)
    runs.start(run)
    wait_for(lambda: run.refresh_from_db() or run.status == "done", timeout=120, message="training")

    # long enough to be killed in the middle: 4 pictures x 150 steps
    slow = {**EVAL, "images_per_prompt": 4, "steps": 150}
    call_command("evaluate", run="kill-eval", checkpoints="last", no_base=True, **slow)
    (evaluation,) = Evaluation.objects.all()
    wait_for(lambda: evaluation.refresh_from_db() or (evaluation.status == "running" and evaluation.progress_done > 0),
             timeout=60, message="the evaluation to be under way")
    assert evaluation.progress_total == 600 and evaluation.progress_done < 600
    worker.kill()  # kill -9 mid-evaluation
    changelist = reverse("admin:training_evaluation_changelist")
    wait_for(lambda: admin_client.get(changelist) and evaluation.refresh_from_db() or evaluation.status == "failed",
             timeout=30, message="the evaluations list to notice the dead worker")
    assert evaluation.error == run_evaluations.STOPPED

    again = start_worker(eval_settings)
    try:
        fast = {**EVAL, "near_copy_threshold": 0.999}
        call_command("evaluate", run="kill-eval", checkpoints="last", no_base=True, wait=True, **fast)
        printed = capsys.readouterr().out
        assert "queued kill-eval/checkpoint-2" in printed and "recommended: checkpoint-2" in printed, printed
    finally:
        again.stop()
    statuses = sorted(Evaluation.objects.values_list("status", flat=True))
    assert statuses == ["done", "failed"]
