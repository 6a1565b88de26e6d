"""Jobs read through the API are reconciled with Redis first (jobs.core.reconcile): a running row whose RQ job is
gone reads as failed, and the refreshed row still lists its images in index order."""
import uuid

import pytest

from generator.models import GenerationJob
from tests.api.conftest import make_image, make_job

pytestmark = pytest.mark.django_db

Status = GenerationJob.Status


def test_a_job_lost_from_the_queue_reads_as_failed(alice, alice_api, registered_model, redis_clean):
    # "running" in the DB, but Redis has no such RQ job (flushed, worker gone): reconciled on read.
    lost = make_job(alice, registered_model, status=Status.RUNNING, rq_job_id=f"gen-{uuid.uuid4()}")
    [listed] = alice_api.get("/api/generations/").json()["results"]
    assert listed["status"] == "failed" and "lost from the queue" in listed["error"]
    assert alice_api.get(f"/api/generations/{lost.pk}/").json()["status"] == "failed"


def test_a_reconciled_jobs_images_stay_in_index_order(alice, alice_api, registered_model, redis_clean):
    # reconcile refreshes the row from the database, which drops the view's ordered prefetch of its images
    lost = make_job(alice, registered_model, status=Status.RUNNING, rq_job_id=f"gen-{uuid.uuid4()}")
    make_image(lost, index=0), make_image(lost, index=1)  # index 1 is the newer row
    body = alice_api.get(f"/api/generations/{lost.pk}/").json()
    assert body["status"] == "failed"
    assert [image["seed"] for image in body["images"]] == [lost.seed, lost.seed + 1]
