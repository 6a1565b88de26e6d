"""Training runs through the real stack: admin actions -> Redis -> a real `rqworker training` subprocess."""
import csv

import pytest
from django.core.management import call_command

from generator.models import AIModel
from tests.conftest import wait_for
from training import runs
from training.models import TrainingRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def reload(run):
    run.refresh_from_db()
    return run


def wait_status(run, statuses, worker, timeout=150):
    def check():
        reload(run)
        assert run.status != "failed" or "failed" in statuses, run.error + "\n" + worker.log()[-3000:]
        return run.status in statuses

    wait_for(check, timeout=timeout, interval=0.2, message=f"run {run.name} to be {statuses} (is {run.status})")
    return run


def metric_steps(run):
    with open(run.out_path / "metrics.csv", newline="") as fh:
        return [int(r["step"]) for r in csv.DictReader(fh)]


def test_start_trains_and_registers_inactive_models(make_run, start_worker, base_model):
    worker = start_worker()
    base_model.default_steps = 10
    base_model.save()
    lora_run, full_run = make_run("lora-run"), make_run("full-run", method="full", max_steps=2)
    lora_run.preset = "retro-style"  # its settings are FAST's: only the recommended CFG scale comes from it
    lora_run.save()
    runs.start(lora_run)
    runs.start(full_run)
    assert reload(lora_run).status == "queued" and lora_run.rq_job_id
    with pytest.raises(runs.RunRefused):  # already queued
        runs.start(lora_run)

    wait_status(lora_run, ["done"], worker)
    assert lora_run.step == lora_run.max_steps == 3 and lora_run.finished_at and lora_run.started_at
    assert "loss" in lora_run.last_losses
    out = lora_run.out_path
    for name in ("pytorch_lora_weights.safetensors", "lora_kohya.safetensors", "metrics.csv", "loss.png",
                 "README.md", "config.toml", "train.log", "validation/step-000003.png"):
        assert (out / name).is_file(), name
    assert metric_steps(lora_run) == [1, 2, 3]
    model = lora_run.result_model
    assert (model.kind, model.is_active, model.parent, model.name) == ("lora", False, base_model, "lora-run")
    assert model.source == str(out / "pytorch_lora_weights.safetensors")
    assert (model.native_size, model.architecture) == (64, "sd1")
    assert (model.default_steps, model.default_guidance_scale) == (10, 3.0)  # the base's steps, the preset's CFG
    assert "done: step 3/3" in (out / "train.log").read_text()

    wait_status(full_run, ["done"], worker)
    full = full_run.result_model
    assert (full.kind, full.is_active, full.source) == ("finetuned", False, str(full_run.out_path))
    assert (full.default_steps, full.default_guidance_scale) == (10, None)
    assert (full_run.out_path / "model_index.json").is_file()

    assert runs.activate_result(lora_run).is_active
    with pytest.raises(runs.RunRefused, match="active"):
        runs.delete_outputs(reload(lora_run))
    runs.delete_outputs(reload(full_run))  # inactive, unused model: removed with the files
    assert reload(full_run).status == "draft" and not full_run.out_path.exists()
    assert not AIModel.objects.filter(name="full-run").exists()


def test_cancel_a_running_run_then_resume_to_the_end(make_run, start_worker):
    worker = start_worker()
    run = make_run("long-run", max_steps=300)
    runs.start(run)
    wait_for(lambda: reload(run).status == "running" and run.step >= 1, timeout=120, message="training to start")
    assert run.eta_seconds is not None and run.worker_name
    assert runs.cancel(run) and reload(run).cancel_requested
    wait_status(run, ["cancelled"], worker)
    stopped = run.step
    assert 1 <= stopped < 300, stopped
    assert (run.out_path / f"checkpoint-{stopped}").is_dir()
    assert not (run.out_path / "pytorch_lora_weights.safetensors").exists()
    assert run.result_model is None and not run.cancel_requested

    runs.resume(run)
    assert reload(run).resume_requested
    wait_status(run, ["done"], worker)
    assert run.step == run.max_steps == 300
    assert metric_steps(run) == list(range(1, 301))  # resumed exactly where it stopped: no step twice
    assert "resuming run long-run" in (run.out_path / "train.log").read_text()
    assert run.result_model is not None and not run.result_model.is_active


def test_killed_worker_is_reconciled_as_interrupted_and_resumes(make_run, start_worker):
    worker = start_worker()
    run = make_run("killed-run", max_steps=320, checkpoint_steps=40)
    runs.start(run)
    wait_for(lambda: reload(run).status == "running" and run.step >= 90, timeout=150, message="training past 90")
    worker.kill()  # kill -9: no chance to say anything
    assert reload(run).status == "running"
    wait_for(lambda: runs.reconcile(reload(run)).status == "interrupted", timeout=30,
             message="reconcile to notice the dead worker")
    assert "stopped unexpectedly" in run.error
    call_command("reconcile_runs")  # nothing left to change
    assert reload(run).status == "interrupted"
    assert any(p.name.startswith("checkpoint-") for p in run.out_path.iterdir())

    worker = start_worker()
    runs.resume(run)
    wait_status(run, ["done"], worker)
    assert run.step == run.max_steps == 320 and run.error == ""
    steps = metric_steps(run)
    assert steps == list(range(1, 321))
    assert run.result_model is not None


def test_reconcile_runs_command_marks_a_lost_queued_run(make_run, redis_clean, capsys):
    run = make_run("lost-run")
    # queued long ago (past the enqueue grace period), and Redis has no such job
    TrainingRun.objects.filter(pk=run.pk).update(status="queued", rq_job_id="training-run-nowhere",
                                                 queued_at=run.created_at.replace(year=2000))
    call_command("reconcile_runs")
    assert "lost-run: queued -> interrupted" in capsys.readouterr().out
    assert reload(run).status == "interrupted" and "lost from the queue" in run.error
