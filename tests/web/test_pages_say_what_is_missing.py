"""The job page says when no worker listens (RQ's worker registry), shows the seeds used, links the API token."""
import pytest
from django.urls import reverse

from generator.models import GenerationJob
from tests.web.conftest import make_finished_job

pytestmark = pytest.mark.django_db

MISSING = "No worker is listening on the &#x27;generation&#x27; queue — start one with `manage.py rqworker generation`"


def queued_job(user, model):
    return GenerationJob.objects.create(user=user, model=model, prompt="a girl", seed=-1, steps=2, guidance_scale=7.0, width=64,
                                        height=64, num_images=1, scheduler="euler")


def test_queued_job_page_says_no_worker_listens_and_how_to_start_one(alice_client, alice, tiny_model, redis_clean):
    job = queued_job(alice, tiny_model)
    assert MISSING in alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()


def test_no_warning_while_a_worker_is_registered_on_the_queue(alice_client, alice, tiny_model, redis_clean):
    import django_rq
    from rq import Worker

    queue = django_rq.get_queue("generation")
    worker = Worker([queue], connection=queue.connection, name="test-listener")
    worker.register_birth()  # what `rqworker generation` does on start: an entry in RQ's worker registry
    try:
        job = queued_job(alice, tiny_model)
        html = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
        assert 'id="no-worker"' not in html
        training = django_rq.get_queue("training")
        assert not Worker.all(connection=training.connection, queue=training)  # the other queue has nobody
    finally:
        worker.register_death()


def test_finished_job_shows_the_seeds_used_not_random(alice_client, alice, tiny_model):
    job, _ = make_finished_job(alice, tiny_model, n=2)
    GenerationJob.objects.filter(pk=job.pk).update(seed=-1)
    html = alice_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert '<span id="job-seed" data-requested="-1">seeds 1–2</span>' in html and "random seed" not in html


def test_navigation_links_the_api_token_page(alice_client, tiny_model):
    html = alice_client.get(reverse("generate")).content.decode()
    assert f'<a href="{reverse("account-token")}"' in html
