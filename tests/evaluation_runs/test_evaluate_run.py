"""Evaluating a training run's checkpoints through the real stack: admin action -> Redis -> a real worker
(trains on 'training', evaluates on 'generation') -> Evaluation rows, per-image rows, the recommendation,
the staff report page and its downloadable self-contained HTML in headless Chromium."""
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse

from tests.conftest import shot, wait_for
from tests.evaluation_runs.conftest import EVAL
from training import runs
from training.models import Evaluation, EvaluationImage

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def reload(obj):
    obj.refresh_from_db()
    return obj


def wait_run_done(run, worker, timeout=120):
    def check():
        assert reload(run).status != "failed", run.error + "\n" + worker.log()[-3000:]
        return run.status == "done"

    wait_for(check, timeout=timeout, message=f"run {run.name} to finish (is {run.status})")


def wait_evaluations(run, count, worker, timeout=120):
    def check():
        rows = list(Evaluation.objects.filter(training_run=run))
        for row in rows:
            assert row.status != "failed", row.error + "\n" + worker.log()[-3000:]
        return len(rows) == count and all(r.status == "done" for r in rows)

    wait_for(check, timeout=timeout, message=f"{count} evaluations of {run.name}")


@pytest.mark.browser
def test_admin_evaluates_every_checkpoint_and_reports(make_run, worker, eval_settings, client, page, capsys):
    # near-copy threshold 0.999: tiny random encoders put every picture at cosine ~0.97 to the training set
    eval_settings.RETROPORTAL_EVALUATION_DEFAULTS = {**EVAL, "near_copy_threshold": 0.999}
    run = make_run("eval-run", max_steps=4, checkpoint_steps=2)
    runs.start(run)
    wait_run_done(run, worker)
    assert sorted(p.name for p in run.out_path.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]

    staff = User.objects.create_superuser("boss", "boss@example.org", "pw")
    client.force_login(staff)
    response = client.post(reverse("admin:training_trainingrun_changelist"),
                           {"action": "evaluate_checkpoints", "_selected_action": [run.pk]}, follow=True)
    assert "2 checkpoint evaluation(s) queued and the base model&#x27;s" in response.content.decode()
    wait_evaluations(run, 2, worker)
    base = Evaluation.objects.get(model=run.base_model, training_run=None)
    wait_for(lambda: reload(base).status == "done", timeout=60, message="the base model's evaluation")

    evaluations = list(Evaluation.objects.filter(training_run=run).order_by("step"))
    assert [(e.checkpoint, e.step) for e in evaluations] == [("checkpoint-2", 2), ("checkpoint-4", 4)]
    for e in evaluations:
        assert e.progress_done == e.progress_total == 2  # 1 prompt x 1 image x 2 steps
        assert e.lora_path.endswith("pytorch_lora_weights.safetensors") and str(e.out_path) in e.lora_path
        assert set(e.overall) >= {"clip_t", "clip_i", "dino", "near_copy_rate"} and e.by_prompt and e.by_language
        assert e.settings["dino_model"] == eval_settings.RETROPORTAL_DINO_MODEL
        (image,) = EvaluationImage.objects.filter(evaluation=e)
        assert (image.prompt_id, image.language, image.seed) == ("girl-glasses-market.en", "en", 3)
        assert (e.out_path / image.file).is_file() and (e.out_path / "report.html").is_file()
    # before vs after: the base model saw the same prompts, seeds, size and references, without a LoRA
    assert base.settings == evaluations[0].settings and base.suite == evaluations[0].suite and not base.lora_path
    assert base.images.get().seed == 3
    # two checkpoints and the base saw the same noise but different weights
    assert len({evaluations[0].overall["clip_t"], evaluations[1].overall["clip_t"], base.overall["clip_t"]}) == 3
    reload(run)
    assert run.recommended_checkpoint in ("checkpoint-2", "checkpoint-4")
    assert run.recommendation_reason.startswith(run.recommended_checkpoint + ": highest CLIP-T")

    # manage.py evaluate --run: everything is evaluated already, nothing is queued again
    call_command("evaluate", run="eval-run", checkpoints="all")
    assert "skip eval-run" in capsys.readouterr().out
    assert Evaluation.objects.count() == 3

    change = client.get(reverse("admin:training_trainingrun_change", args=[run.pk])).content.decode()
    assert f"<b>Recommended: {run.recommended_checkpoint}</b>" in change and "evaluation report" in change
    listing = client.get(reverse("admin:training_trainingrun_changelist")).content.decode()
    assert f"{run.recommended_checkpoint} (2)" in listing

    report_url = reverse("admin:training_trainingrun_report", args=[run.pk])
    body = client.get(report_url).content.decode()
    assert f"Recommended: {run.recommended_checkpoint}" in body
    assert "checkpoint-2" in body and "checkpoint-4" in body and "<polyline" in body and "Metrics per checkpoint" in body
    assert "base (tiny-sd1)" in body
    download = client.get(report_url + "?download=1")
    assert download["Content-Disposition"] == 'attachment; filename="eval-run-report.html"'
    exported = download.content.decode()
    assert "http:" not in exported and "https:" not in exported and "href=" not in exported

    requests, blocked = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.route("**/*", lambda route: (blocked.append(route.request.url), route.abort()))  # any network request
    page.set_content(exported, wait_until="load")
    assert page.locator("h1").inner_text() == "Training run eval-run"
    assert page.locator("img.thumb").count() == 3 and page.locator("svg polyline").count() == 1
    assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    assert not blocked and all(url.startswith("data:") for url in requests), (blocked, requests)
    shot(page, "run-evaluation-report")

    client.logout()
    assert client.get(report_url).status_code == 302  # anonymous: to the admin login
    User.objects.create_user("pleb", "pleb@example.org", "pw")
    client.login(username="pleb", password="pw")
    assert client.get(report_url).status_code == 302  # not staff: the admin refuses
    assert client.get(reverse("admin:training_trainingrun_compare") + "?runs=eval-run").status_code == 302

    # deleting the run deletes its evaluations and their folders; the base model's evaluation stays
    folders = [e.out_path for e in evaluations]
    run.delete()
    assert not any(folder.exists() for folder in folders) and list(Evaluation.objects.all()) == [base]
    assert base.out_path.is_dir()


def test_full_fine_tune_is_evaluated_on_its_exported_pipeline(make_run, worker, eval_settings, capsys, tmp_path):
    run = make_run("full-eval", method="full", max_steps=2)
    runs.start(run)
    wait_run_done(run, worker)
    call_command("evaluate", run="full-eval", wait=True, no_base=True, out=str(tmp_path), near_copy_threshold=0.999,
                 **EVAL)
    printed = capsys.readouterr().out
    (evaluation,) = Evaluation.objects.filter(training_run=run)
    assert evaluation.status == "done", evaluation.error + worker.log()[-2000:]
    assert (evaluation.checkpoint, evaluation.step, evaluation.lora_path) == ("final", 2, "")
    assert "recommended: final" in printed and (tmp_path / "report.html").is_file()
    assert "Training run full-eval" in (tmp_path / "report.html").read_text()
