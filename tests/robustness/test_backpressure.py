"""Back-pressure: per-user unfinished-job cap (tests/api/test_api.py), daily image quota, global queue bound.

Beyond a limit the website says so in the form and the API answers 429 with Retry-After; nothing is recorded.
"""
import datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from generator.models import GenerationJob
from tests.web.test_forms import VALID

pytestmark = pytest.mark.django_db


def api_client(user):
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")


def api_submit(c, **body):
    return c.post("/api/generations/", {"prompt": "retro anime style", "steps": 2, "width": 64, "height": 64, **body},
                  content_type="application/json")


JOB = dict(seed=1, steps=2, guidance_scale=7.0, width=64, height=64, scheduler="euler")


def test_daily_image_quota(alice, alice_client, bob, tiny_model, settings):
    settings.RETROPORTAL_DAILY_IMAGE_QUOTA = 3
    settings.RETROPORTAL_MAX_QUEUED_JOBS_PER_USER = 50
    api = api_client(alice)
    # Old, failed and cancelled jobs do not count.
    old = GenerationJob.objects.create(user=alice, model=tiny_model, prompt="old", num_images=3, status="done", **JOB)
    GenerationJob.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(hours=25))
    GenerationJob.objects.create(user=alice, model=tiny_model, prompt="f", num_images=3, status="failed", **JOB)
    GenerationJob.objects.create(user=alice, model=tiny_model, prompt="c", num_images=3, status="cancelled", **JOB)
    assert api_submit(api, num_images=2).status_code == 202
    before = GenerationJob.objects.count()

    response = api_submit(api, num_images=2)
    assert response.status_code == 429
    assert "Daily quota reached" in response.json()["detail"] and "1 left" in response.json()["detail"]
    assert 23 * 3600 < int(response["Retry-After"]) <= 24 * 3600 + 1
    page = alice_client.post(reverse("generate"), {**VALID, "num_images": "2"})
    assert page.status_code == 200 and "Daily quota reached" in page.content.decode()
    assert GenerationJob.objects.count() == before  # nothing recorded

    assert api_submit(api, num_images=1).status_code == 202  # exactly up to the quota
    assert "Daily quota reached" in api_submit(api, num_images=1).json()["detail"]
    assert api_submit(api_client(bob), num_images=3).status_code == 202  # per user


def test_global_queue_bound(alice, bob, tiny_model, settings, client):
    settings.RETROPORTAL_MAX_QUEUED_JOBS = 2
    alice_api = api_client(alice)
    assert api_submit(alice_api).status_code == 202 and api_submit(alice_api).status_code == 202
    response = api_submit(api_client(bob))
    assert response.status_code == 429 and response["Retry-After"] == "60"
    assert "The site is busy" in response.json()["detail"]
    client.force_login(bob)
    page = client.post(reverse("generate"), VALID)
    assert page.status_code == 200 and "The site is busy" in page.content.decode()
    assert GenerationJob.objects.filter(user=bob).count() == 0
    # A running job no longer counts as waiting: room again.
    GenerationJob.objects.filter(user=alice).update(status="running")
    assert api_submit(api_client(bob)).status_code == 202


def test_limits_can_be_switched_off(alice, tiny_model, settings):
    settings.RETROPORTAL_DAILY_IMAGE_QUOTA = 0
    settings.RETROPORTAL_MAX_QUEUED_JOBS = 0
    settings.RETROPORTAL_MAX_QUEUED_JOBS_PER_USER = 50
    api = api_client(alice)
    assert all(api_submit(api, num_images=4).status_code == 202 for _ in range(3))
