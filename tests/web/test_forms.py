"""The generate form: field-named errors, server-side limits, the queued-jobs cap, prefill, accounts."""
import pytest
from django.urls import reverse

from generator.models import GenerationJob, PromptHistory
from tests.web.conftest import make_finished_job

VALID = {
    "prompt": "retro anime style, a girl with a red scarf", "negative_prompt": "", "model": "tiny-sd1",
    "seed": "-1", "steps": "2", "guidance_scale": "7", "width": "64", "height": "64", "num_images": "1",
    "scheduler": "euler",
}


def post(client, **changes):
    return client.post(reverse("generate"), {**VALID, **changes})


def test_generate_page_has_the_form(alice_client, tiny_model):
    response = alice_client.get(reverse("generate"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'placeholder="Please enter your prompt here!"' in html
    for name in ("prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height",
                 "num_images", "scheduler", "model"):
        assert f'name="{name}"' in html, name
    assert "<details" in html and 'id="seed-random"' in html
    assert '<option value="tiny-sd1" selected>' in html  # the default model is preselected
    assert '<option value="dpmpp_2m_karras"' in html


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"width": "65"}, "width", "multiple of 8"),
        ({"height": "2048"}, "height", "out of range"),
        ({"steps": "0"}, "steps", "out of range"),
        ({"steps": "101"}, "steps", "out of range"),
        ({"scheduler": "turbo"}, "scheduler", "unknown scheduler"),
        ({"num_images": "9"}, "num_images", "out of range"),
        ({"guidance_scale": "31"}, "guidance_scale", "out of range"),
        ({"seed": "-2"}, "seed", "out of range"),
        ({"prompt": "   "}, "prompt", "required"),
        ({"steps": "many"}, "steps", "whole number"),
        ({"model": "no-such-model"}, "model", "unknown or inactive model"),
    ],
)
def test_invalid_values_are_refused_naming_the_field(alice_client, tiny_model, changes, field, words):
    response = post(alice_client, **changes)
    assert response.status_code == 200  # the form again, with errors
    errors = response.context["form"].errors
    assert field in errors, errors
    assert words in " ".join(errors[field])
    assert f'data-field="{field}"' in response.content.decode()
    assert not GenerationJob.objects.exists()


def test_every_bad_field_is_reported_at_once(alice_client, tiny_model):
    response = post(alice_client, width="99999", height="65", steps="500", guidance_scale="99", num_images="x")
    errors = response.context["form"].errors
    assert set(errors) == {"width", "height", "steps", "guidance_scale", "num_images"}, errors
    assert errors["width"] == ["99999 is out of range; use a multiple of 8 from 64 to 1024, e.g. 1024"]
    assert errors["height"] == ["65 is not a multiple of 8; use e.g. 64"]
    assert not GenerationJob.objects.exists()


def test_limits_come_from_settings(alice_client, tiny_model, settings):
    settings.RETROPORTAL_LIMITS = {**settings.RETROPORTAL_LIMITS, "max_steps": 3}
    response = post(alice_client, steps="4")
    assert "use 1 to 3" in " ".join(response.context["form"].errors["steps"])


def test_valid_post_creates_a_job_and_redirects_to_its_page(alice_client, alice, tiny_model):
    response = post(alice_client, negative_prompt="blurry")
    job = GenerationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert (job.user, job.model, job.steps, job.width, job.scheduler) == (alice, tiny_model, 2, 64, "euler")
    assert PromptHistory.objects.get(user=alice).negative_prompt == "blurry"
    page = alice_client.get(response["Location"])
    assert page.status_code == 200 and "retro anime style, a girl with a red scarf" in page.content.decode()


def test_queued_jobs_cap_is_a_form_error(alice_client, tiny_model, settings):
    settings.RETROPORTAL_MAX_QUEUED_JOBS_PER_USER = 2
    assert post(alice_client).status_code == 302
    assert post(alice_client).status_code == 302
    response = post(alice_client)
    assert response.status_code == 200
    assert "unfinished jobs (the limit is 2)" in " ".join(response.context["form"].non_field_errors())
    assert GenerationJob.objects.count() == 2


def test_user_text_is_escaped(alice_client, tiny_model):
    response = post(alice_client, prompt="<script>alert(1)</script> retro")
    page = alice_client.get(response["Location"]).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; retro" in page


def test_reuse_prefills_from_an_image_and_from_history(alice_client, alice, tiny_model):
    job, (image,) = make_finished_job(alice, tiny_model, prompt="retro anime, reused prompt")
    form = alice_client.get(reverse("generate"), {"reuse": str(image.pk)}).context["form"]
    assert form.initial["prompt"] == "retro anime, reused prompt"
    assert form.initial["seed"] == image.seed and form.initial["steps"] == 2 and form.initial["width"] == 64
    entry = PromptHistory.objects.create(user=alice, prompt="from history", negative_prompt="ugly", last_job=job)
    form = alice_client.get(reverse("generate"), {"history": entry.pk}).context["form"]
    assert (form.initial["prompt"], form.initial["negative_prompt"], form.initial["scheduler"]) == (
        "from history", "ugly", "euler")
    history_page = alice_client.get(reverse("history")).content.decode()
    assert f"/generate/?history={entry.pk}" in history_page
    # someone else's private image or history gives a plain form, not their settings
    assert alice_client.get(reverse("generate"), {"reuse": "not-a-uuid"}).status_code == 200


def test_signup_signin_signout(client, django_user_model):
    response = client.post(reverse("signup"), {
        "username": "carol", "password1": "s3cret-Retro-99", "password2": "s3cret-Retro-99"})
    assert response.status_code == 302 and response["Location"] == reverse("generate")
    assert django_user_model.objects.filter(username="carol").exists()
    assert client.get(reverse("generate")).status_code == 200
    assert client.get(reverse("logout")).status_code == 405  # sign out is POST only
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("generate")).status_code == 302
    response = client.post(reverse("login"), {"username": "carol", "password": "s3cret-Retro-99"})
    assert response.status_code == 302 and response["Location"] == reverse("generate")


def test_signup_keeps_password_validators(client, django_user_model):
    response = client.post(reverse("signup"), {"username": "dave", "password1": "123", "password2": "123"})
    assert response.status_code == 200
    assert "too short" in " ".join(response.context["form"].errors["password2"])
    assert not django_user_model.objects.filter(username="dave").exists()


def test_signup_can_be_switched_off(client, settings, db):
    settings.RETROPORTAL_ALLOW_SIGNUP = False
    assert client.get(reverse("signup")).status_code == 404
    assert client.post(reverse("signup"), {"username": "x"}).status_code == 404
    assert reverse("signup") not in client.get(reverse("login")).content.decode()
    settings.RETROPORTAL_ALLOW_SIGNUP = True
    assert reverse("signup") in client.get(reverse("login")).content.decode()
