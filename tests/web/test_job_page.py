"""The job page: its pictures in index order, read from the database once."""
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generator.models import GeneratedImage
from tests.web.conftest import make_finished_job


def test_job_page_reads_its_pictures_once_and_lists_them_in_index_order(alice_client, alice, tiny_model):
    job, images = make_finished_job(alice, tiny_model, n=3)
    with CaptureQueriesContext(connection) as ctx:
        response = alice_client.get(reverse("job-detail", args=[job.pk]))
    assert response.status_code == 200
    table = GeneratedImage._meta.db_table
    reads = [q["sql"] for q in ctx.captured_queries if f'FROM "{table}"' in q["sql"]]
    assert len(reads) == 1, reads  # the status payload and the template list share one prefetch
    assert [image.index for image in response.context["images"]] == [0, 1, 2]
    assert [picture["seed"] for picture in response.context["status"]["images"]] == [1, 2, 3]
