"""manage.py sweep: a 2 x 2 grid trained and evaluated by a real worker, compared, and a re-run that trains nothing."""
import csv

import pytest
from django.core.management import call_command
from django.urls import reverse

from tests.conftest import ARTIFACTS

from training.models import Dataset, Evaluation, TrainingRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SWEEP = """
name = "sw"
base_model = "tiny-sd1"
dataset = "tiny-girls"
checkpoints = "last"
regularization_weight = 0.01

[base]
resolution = 32
bucket_step = 16
rank = 4
max_steps = 2
checkpoint_steps = 0
validation_inference_steps = 2
seed = 7

[grid]
dataset_size = [2, 4]
regularization = ["none", "l2sp"]

[evaluation]
images_per_prompt = 1
steps = 2
prompt_keys = ["girl-glasses-market"]
languages = ["en"]
near_copy_threshold = 0.999
"""
NAMES = ["sw-n2-none", "sw-n2-l2sp", "sw-n4-none", "sw-n4-l2sp"]


def test_sweep_trains_evaluates_compares_and_skips_finished_runs(worker, base_model, tiny_dataset, tmp_path, capsys,
                                                                  admin_client):
    path = tmp_path / "grid.toml"
    path.write_text(SWEEP, encoding="utf-8")
    call_command("sweep", str(path), timeout=150)
    printed = capsys.readouterr().out
    assert [f"start {n}" in printed for n in NAMES] == [True] * 4, printed

    runs = {r.name: r for r in TrainingRun.objects.filter(name__in=NAMES)}
    assert sorted(runs) == sorted(NAMES)
    for name, run in runs.items():
        assert run.status == "done" and run.step == 2, (name, run.error, worker.log()[-2000:])
        assert run.recommended_checkpoint == "checkpoint-2" and run.recommendation_reason
        (evaluation,) = Evaluation.objects.filter(training_run=run)
        assert evaluation.status == "done" and evaluation.images.count() == 1
        assert run.config["l2sp_weight"] == (0.01 if name.endswith("l2sp") else 0.0)
    subset = Dataset.objects.get(name="tiny-girls-first2")
    assert subset.status == "done" and subset.images.count() == 2
    assert sorted(p.name for p in (subset.images_dir).glob("*.png")) == ["0000.png", "0001.png"]
    assert runs["sw-n2-none"].dataset == subset and runs["sw-n4-none"].dataset == tiny_dataset

    results = tmp_path / "grid-results"
    table = printed[printed.index("run "):]
    assert all(name in table for name in NAMES) and "clip_t" in table and "checkpoint-2" in table
    with open(results / "comparison.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["run"] for r in rows] == NAMES and {r["regularization"] for r in rows} == {"none", "l2sp"}
    comparison = (results / "comparison.html").read_text()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "sweep-comparison.html").write_text(comparison)
    assert all(f"{name} (checkpoint-2)" in comparison for name in NAMES) and "https:" not in comparison
    assert "Recommended run: sw-" in comparison and "measured against different reference pictures" in comparison
    # before vs after: the base model once per reference set (the 2-picture subset and the whole dataset)
    assert "tiny-sd1 (base) on tiny-girls-first2" in comparison and "tiny-sd1 (base) on tiny-girls<" in comparison
    assert Evaluation.objects.filter(training_run=None, status="done").count() == 2

    # The staff comparison page shows the same four runs, and downloads as one file.
    compare = reverse("admin:training_trainingrun_compare") + "?runs=" + ",".join(NAMES)
    page = admin_client.get(compare).content.decode()
    assert all(f"{name} (checkpoint-2)" in page for name in NAMES) and "download comparison.html" in page
    download = admin_client.get(compare + "&download=1")
    assert download["Content-Disposition"] == 'attachment; filename="comparison.html"'
    assert "href=" not in download.content.decode()
    assert admin_client.get(compare + ",no-such-run").status_code == 404

    # Re-run: nothing is trained or evaluated again.
    before = {r.name: (r.updated_at, r.finished_at, r.started_at, r.rq_job_id) for r in runs.values()}
    weights = {n: (r.out_path / "pytorch_lora_weights.safetensors").stat().st_mtime_ns for n, r in runs.items()}
    evaluations = set(Evaluation.objects.values_list("pk", "finished_at"))
    call_command("sweep", str(path), timeout=60)
    again = capsys.readouterr().out
    assert [f"skip {n} (done)" in again for n in NAMES] == [True] * 4 and "start " not in again, again
    assert again.count("skip evaluation of") == 4
    after = {r.name: (r.updated_at, r.finished_at, r.started_at, r.rq_job_id) for r in TrainingRun.objects.filter(name__in=NAMES)}
    assert after == before
    assert {n: (r.out_path / "pytorch_lora_weights.safetensors").stat().st_mtime_ns for n, r in runs.items()} == weights
    assert set(Evaluation.objects.values_list("pk", "finished_at")) == evaluations
    assert all(name in again for name in NAMES)

    # An interrupted run (e.g. its worker was killed) is resumed by the next sweep, the others skipped.
    TrainingRun.objects.filter(name="sw-n2-none").update(status="interrupted", error="killed")
    call_command("sweep", str(path), timeout=120)
    third = capsys.readouterr().out
    assert "resume sw-n2-none (was interrupted)" in third and third.count("skip sw-") == 3, third
    resumed = TrainingRun.objects.get(name="sw-n2-none")
    assert resumed.status == "done" and resumed.step == 2 and "resuming run sw-n2-none" in resumed.log_path.read_text()


def test_sweep_file_errors_name_the_key(base_model, tiny_dataset, tmp_path):
    from django.core.management import CommandError

    path = tmp_path / "bad.toml"
    path.write_text(SWEEP.replace('regularization = ["none", "l2sp"]', 'regularization = ["none", "dropout"]'))
    with pytest.raises(CommandError, match=r"grid.regularization: 'dropout' is not one of"):
        call_command("sweep", str(path))
    path.write_text(SWEEP.replace("rank = 4", "rnak = 4"))
    with pytest.raises(CommandError, match="rnak: not a TrainConfig setting"):
        call_command("sweep", str(path))
    assert not TrainingRun.objects.exists()
