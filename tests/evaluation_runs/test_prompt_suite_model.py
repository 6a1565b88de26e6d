"""PromptSuite rows: the YAML is validated on save and in the admin, errors name the line and key."""
import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.urls import reverse

from training import run_evaluations
from training.models import PromptSuite

pytestmark = pytest.mark.django_db

GOOD = """name: tiny
languages: [en, id]
prompts:
  - key: girl-market
    attributes: {gender: girl, background: market}
    en: retro anime style, a girl at a market
    id: gaya anime retro, seorang gadis di pasar
"""
EMPTY_TEXT = GOOD.replace("id: gaya anime retro, seorang gadis di pasar", 'id: ""')  # line 7
BAD_ATTRIBUTE = GOOD.replace("{gender: girl, background: market}", "{gender: girl, mood: happy}")  # line 5


def test_save_refuses_a_suite_naming_line_and_key():
    with pytest.raises(ValidationError) as info:
        PromptSuite(name="broken", text=EMPTY_TEXT).save()
    assert info.value.message_dict["text"] == ["broken:7: prompts[0].id: is empty"]
    with pytest.raises(ValidationError, match=r"broken:5: prompts\[0\]\.attributes\.mood: unknown attribute"):
        PromptSuite(name="broken", text=BAD_ATTRIBUTE).save()
    assert not PromptSuite.objects.filter(name="broken").exists()
    suite = PromptSuite.objects.create(name="tiny", text=GOOD)
    assert [p.id for p in suite.parse().prompts] == ["girl-market.en", "girl-market.id"]


def test_admin_shows_the_error_on_the_text_field(client):
    client.force_login(User.objects.create_superuser("boss", "boss@example.org", "pw"))
    response = client.post(reverse("admin:training_promptsuite_add"), {"name": "broken", "text": EMPTY_TEXT})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["text"] == ["broken:7: prompts[0].id: is empty"]
    response = client.post(reverse("admin:training_promptsuite_add"), {"name": "tiny", "text": GOOD})
    assert response.status_code == 302 and PromptSuite.objects.filter(name="tiny").exists()
    assert client.get(reverse("admin:training_promptsuite_changelist")).status_code == 200


def test_default_suite_is_there_and_subsets_are_checked():
    suite = PromptSuite.default()
    assert suite.name == "retro_default" and PromptSuite.default().pk == suite.pk
    assert len(suite.parse().concepts) > 4 and suite.parse().languages == ["en", "id"]
    with pytest.raises(run_evaluations.EvaluationRefused, match="unknown prompt key"):
        run_evaluations.suite_for(suite, {"prompt_keys": ["no-such-concept"], "languages": None})
    with pytest.raises(run_evaluations.EvaluationRefused, match="none of them"):
        run_evaluations.suite_for(suite, {"prompt_keys": None, "languages": ["fr"]})


def test_unknown_evaluation_settings_are_refused_by_name(settings):
    with pytest.raises(run_evaluations.EvaluationRefused, match="evaluation: unknown evaluation setting.s. stpes"):
        run_evaluations.resolve_settings({"stpes": 3})
    settings.RETROPORTAL_EVALUATION_DEFAULTS = {"images": 3}
    with pytest.raises(run_evaluations.EvaluationRefused, match="RETROPORTAL_EVALUATION_DEFAULTS: unknown .* images;"):
        run_evaluations.resolve_settings({})
    settings.RETROPORTAL_EVALUATION_DEFAULTS = {"steps": 3}
    values = run_evaluations.resolve_settings({"images_per_prompt": 1, "prompt_keys": "a, b"}, native_size=64)
    assert (values["steps"], values["images_per_prompt"], values["width"], values["prompt_keys"]) == (3, 1, 64, ["a", "b"])


def test_evaluate_run_command_refuses_bad_input_in_one_line(make_run, tmp_path):
    from django.core.management import CommandError, call_command

    make_run("draft-run")
    bad = tmp_path / "mine.yaml"
    bad.write_text(EMPTY_TEXT, encoding="utf-8")
    with pytest.raises(CommandError, match=r"--prompts .*mine.yaml: mine:7: prompts\[0\]\.id: is empty"):
        call_command("evaluate", run="draft-run", prompts=str(bad))
    good = tmp_path / "mine.yml"
    good.write_text(GOOD, encoding="utf-8")
    with pytest.raises(CommandError, match="draft-run has no checkpoints to evaluate"):
        call_command("evaluate", run="draft-run", prompts=str(good))
    assert PromptSuite.objects.get(name="mine").parse().concepts == ["girl-market"]  # stored for the admin
    with pytest.raises(CommandError, match="--run nope: no such training run"):
        call_command("evaluate", run="nope")
    with pytest.raises(CommandError, match="--run and --model"):
        call_command("evaluate", run="draft-run", model="x")
    with pytest.raises(CommandError, match="--model is required"):
        call_command("evaluate", out=str(tmp_path))
