"""End to end in Chromium: log in, add a dataset from a zip, a real 'training' worker prepares it."""
import pytest
from django.contrib.auth import get_user_model

from tests.conftest import WorkerProcess, shot, wait_for
from tests.datasets.builders import EXPECTED, messy_files, zip_bytes
from training.models import Dataset

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def training_worker(transactional_db, redis_clean):
    worker = WorkerProcess(queues=("training",))
    yield worker
    worker.stop()


def test_admin_uploads_a_zip_and_sees_the_prepared_dataset(live_server, page, training_worker, tmp_path):
    get_user_model().objects.create_superuser("curator", "curator@example.com", "pw-for-tests")
    archive = tmp_path / "retro scans.zip"
    archive.write_bytes(zip_bytes(messy_files()))

    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "curator")
    page.fill("#id_password", "pw-for-tests")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")

    page.goto(f"{live_server.url}/admin/training/dataset/add/")
    page.fill("#id_name", "retro-girls")
    page.fill("#id_instance_prompt", "a picture of sks girl")
    page.fill("#id_class_prompt", "a picture of a girl")
    assert page.input_value("#id_min_size") == page.input_value("#id_resolution")  # nothing upscaled by default
    page.fill("#id_min_size", "256")  # explicitly lets 256-511 px pictures in (upscaled, noted per picture)
    page.set_input_files("#id_upload", str(archive))
    page.click("input[name=_continue]")
    page.wait_for_selector("#dataset-summary")
    assert "preparation queued" in page.content()

    def ready():
        page.reload()
        status = page.inner_text("#dataset-status")
        assert status != "Failed", page.inner_text("#dataset-summary") + training_worker.log()
        return status == "Ready"

    wait_for(ready, timeout=120, interval=1.0, message="the dataset to be prepared by the worker")
    counts = {status: int(page.inner_text(f"td.count-{status}")) for status in EXPECTED}
    assert counts == EXPECTED
    left_out = page.inner_text("#dataset-left-out")
    assert "broken/truncated.jpg" in left_out and "truncated" in left_out and "tiny.png" in left_out
    sheet = page.locator("#contact-sheet")
    sheet.scroll_into_view_if_needed()
    wait_for(lambda: sheet.evaluate("img => img.complete && img.naturalWidth > 0"), timeout=20, message="contact sheet")
    shot(page, "dataset-admin")

    dataset = Dataset.objects.get(name="retro-girls")
    assert dataset.status == "done" and dataset.images.count() == EXPECTED["kept"]
    assert dataset.progress_done == dataset.progress_total == 19
    assert (dataset.originals_dir / "名前 with spaces" / "キャラ 1.png").is_file()
