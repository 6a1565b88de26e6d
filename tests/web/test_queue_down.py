"""Redis unreachable: submissions are refused with a clear message and nothing is recorded; the site stays up.

The queue's Redis URL points at a loopback port where nothing listens, so every connection attempt really fails.
"""
import datetime

import django_rq.settings
import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from generator import services
from generator.engine.params import GenerationParams
from generator.models import GenerationJob
from tests.web.test_forms import VALID

DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def redis_down(monkeypatch):
    monkeypatch.setitem(django_rq.settings.QUEUES, "generation", {"URL": DEAD_REDIS, "DEFAULT_TIMEOUT": 60})


def test_website_refuses_with_a_message_and_records_nothing(alice_client, tiny_model, redis_down):
    response = alice_client.post(reverse("generate"), VALID)
    assert response.status_code == 200
    assert "queue is unavailable" in response.content.decode()
    assert not GenerationJob.objects.exists()
    assert alice_client.get(reverse("gallery")).status_code == 200  # the rest of the site answers


def test_api_answers_503_with_retry_after(alice, tiny_model, redis_down, client):
    token = Token.objects.create(user=alice)
    response = client.post(
        "/api/generations/", {"prompt": "retro anime style, a boy"}, content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token.key}",
    )
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "queue is unavailable" in response.json()["detail"]
    assert not GenerationJob.objects.exists()


def test_a_committed_job_that_never_reached_redis_is_queued_again(alice, tiny_model, redis_clean,
                                                                  django_capture_on_commit_callbacks):
    job = GenerationJob.objects.create(
        user=alice, model=tiny_model, **GenerationParams(prompt="retro anime style, a girl", steps=2).as_dict()
    )
    services.reconcile(job)
    assert job.rq_job_id == ""  # within the grace period the enqueue after commit may still be on its way
    GenerationJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - datetime.timedelta(minutes=5))
    job.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):  # the job reaches Redis once the row is committed
        services.reconcile(job)
    job.refresh_from_db()
    assert job.rq_job_id == f"gen-{job.pk}" and job.status == "queued" and job.enqueued_at
    assert django_rq.get_queue("generation").job_ids == [job.rq_job_id]
