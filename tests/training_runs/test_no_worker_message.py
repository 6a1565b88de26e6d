"""Admin pages of queued training work say when no worker listens on the 'training' queue (RQ's registry)."""
import pytest

from training.models import Dataset, TrainingRun

pytestmark = pytest.mark.django_db

MISSING = "No worker is listening on the &#x27;training&#x27; queue — start one with `manage.py rqworker training`"


def test_queued_run_page_says_no_worker_listens(admin_client, make_run, redis_clean):
    run = make_run("waiting-run", max_steps=3)
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.QUEUED)
    assert MISSING in admin_client.get(f"/admin/training/trainingrun/{run.pk}/change/").content.decode()


def test_queued_dataset_page_says_no_worker_listens_until_one_registers(admin_client, redis_clean):
    import django_rq
    from rq import Worker

    dataset = Dataset.objects.create(name="waiting-set", instance_prompt="sks", status=Dataset.Status.QUEUED)
    url = f"/admin/training/dataset/{dataset.pk}/change/"
    assert MISSING in admin_client.get(url).content.decode()
    queue = django_rq.get_queue("training")
    worker = Worker([queue], connection=queue.connection, name="test-training-listener")
    worker.register_birth()
    try:
        assert 'id="no-worker"' not in admin_client.get(url).content.decode()
    finally:
        worker.register_death()
