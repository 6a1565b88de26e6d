"""The dataset admin without a browser: refused uploads, and the staff-only file view."""
import io
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from tests.datasets.builders import encode, textured, write_tree, zip_bytes
from training.models import Dataset

pytestmark = pytest.mark.django_db
ADD_URL = "/admin/training/dataset/add/"


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-for-tests")
    client.force_login(user)
    return client


def add_form(upload, name="set-a") -> dict:
    return {
        "name": name, "instance_prompt": "sks girl", "class_prompt": "", "resolution": 512, "mode": "crop",
        "min_size": 256, "prepare_now": "on", "upload": upload,
        "images-TOTAL_FORMS": 0, "images-INITIAL_FORMS": 0, "images-MIN_NUM_FORMS": 0, "images-MAX_NUM_FORMS": 1000,
    }


def zip_upload(files: dict, name="pics.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, zip_bytes(files), content_type="application/zip")


def test_zip_slip_upload_is_refused_with_the_member_named(admin_client):
    upload = zip_upload({"fine.png": encode(textured(300, 300, 1), "PNG"), "../../../etc/cron.d/x": b"boom"})
    response = admin_client.post(ADD_URL, add_form(upload))
    assert response.status_code == 200
    assert "pics.zip: zip member &#x27;../../../etc/cron.d/x&#x27; climbs out of the archive" in response.text
    assert not Dataset.objects.exists()


def test_zip_bomb_upload_is_refused(admin_client):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("zeros.png", "w", force_zip64=True) as member:
            for _ in range(200 // 16):
                member.write(bytes(16 * 1024 * 1024))
    upload = SimpleUploadedFile("bomb.zip", buffer.getvalue(), content_type="application/zip")
    response = admin_client.post(ADD_URL, add_form(upload))
    assert response.status_code == 200 and "refused as a zip bomb" in response.text
    assert not Dataset.objects.exists()


@pytest.mark.parametrize("resolution, accepted", [(64, True), (60, False), (32, False)])
def test_the_admin_takes_the_mini_world_bases_64_px(admin_client, resolution, accepted):
    upload = zip_upload({"a.png": encode(textured(80, 80, 1), "PNG")})
    form = {**add_form(upload, name=f"mini-{resolution}"), "resolution": resolution, "min_size": 64}
    form.pop("prepare_now")
    response = admin_client.post(ADD_URL, form)
    assert Dataset.objects.filter(name=f"mini-{resolution}").exists() == accepted, response.text[-2000:]
    if not accepted:
        assert "multiple of 8" in response.text or "greater than or equal to 64" in response.text


def test_add_needs_an_upload(admin_client):
    response = admin_client.post(ADD_URL, add_form(b""))
    assert "Upload at least one picture or a zip archive." in response.text


@pytest.fixture
def ready_dataset(tmp_path):
    source = write_tree(tmp_path / "s", {f"p{i}.png": encode(textured(300, 300, i), "PNG") for i in range(2)})
    call_command("prepare_dataset", str(source), "--name", "served", "--instance-prompt", "sks", "--workers", "1",
                 "--resolution", "256")
    return Dataset.objects.get(name="served")


def test_prepared_files_are_served_to_staff_only(client, admin_client, ready_dataset, django_user_model):
    base = f"/admin/training/dataset/{ready_dataset.pk}/file/"
    sheet = admin_client.get(base + "contact_sheet.png")
    assert sheet.status_code == 200 and sheet["Content-Type"] == "image/png"
    assert b"".join(sheet.streaming_content) == ready_dataset.contact_sheet_path.read_bytes()
    assert admin_client.get(base + "images/0001.png").status_code == 200
    assert admin_client.get(base + "images/0001.txt")["Content-Type"].startswith("text/plain")
    assert admin_client.get(base + "images/../../originals/p0.png").status_code == 404
    assert admin_client.get(base + "nope.png").status_code == 404
    change = admin_client.get(f"/admin/training/dataset/{ready_dataset.pk}/change/")
    assert base + "contact_sheet.png" in change.text and base + "images/0000.png" in change.text
    admin_client.logout()
    assert client.get(base + "contact_sheet.png").status_code == 302  # to the admin login
    user = django_user_model.objects.create_user("visitor", password="pw-for-tests")
    client.force_login(user)
    assert client.get(base + "contact_sheet.png").status_code == 302


def test_several_files_are_stored_queued_and_prepared_by_an_rq_worker(
    admin_client, redis_clean, django_capture_on_commit_callbacks
):
    """Multiple-file upload through the admin form; the queued job runs in a burst SimpleWorker."""
    import django_rq

    uploads = [
        SimpleUploadedFile("キャラ one.png", encode(textured(600, 400, 1), "PNG")),
        SimpleUploadedFile("キャラ one.txt", "セーラー服, 1990s anime".encode()),
        SimpleUploadedFile("two.jpg", encode(textured(500, 500, 2), "JPEG")),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(ADD_URL, add_form(uploads, name="multi"), follow=True)
    assert "3 files stored in the originals of multi" in response.text
    dataset = Dataset.objects.get(name="multi")
    assert dataset.status == "queued" and dataset.rq_job_id
    assert sorted(p.name for p in dataset.originals_dir.iterdir()) == ["two.jpg", "キャラ one.png", "キャラ one.txt"]

    django_rq.get_worker("training").work(burst=True)
    dataset.refresh_from_db()
    assert dataset.status == "done", dataset.error
    assert dataset.counts() == {"kept": 2, "duplicate": 0, "rejected": 0, "skipped": 0, "caption": 1}
    assert list(dataset.images.values_list("caption", flat=True)) == ["sks girl", "セーラー服, 1990s anime"]
    assert (dataset.progress_done, dataset.progress_total) == (2, 2)


def test_upload_limits_come_from_settings(admin_client, settings):
    settings.RETROPORTAL_DATASET_LIMITS = {"max_files": 2}
    uploads = [SimpleUploadedFile(f"p{i}.png", b"x") for i in range(3)]
    response = admin_client.post(ADD_URL, add_form(uploads))
    assert "the upload has 3 files; the limit is 2" in response.text
    assert not Dataset.objects.exists()


def test_a_dataset_whose_job_vanished_is_marked_failed(admin_client, redis_clean):
    dataset = Dataset.objects.create(name="stuck", instance_prompt="x", status="running", rq_job_id="dataset-prep-gone")
    admin_client.get(f"/admin/training/dataset/{dataset.pk}/change/")
    dataset.refresh_from_db()
    assert dataset.status == "failed" and "stopped unexpectedly" in dataset.error


@pytest.mark.django_db
def test_a_new_dataset_defaults_to_the_default_models_native_size():
    from generator.models import AIModel
    from training.forms import DatasetAdminForm

    assert DatasetAdminForm().initial["resolution"] == 512  # no model registered: SD 1.x's size
    AIModel.objects.create(name="mini", source="/nonexistent", architecture="sd1", is_default=True, native_size=64)
    form = DatasetAdminForm()
    assert (form.initial["resolution"], form.initial["min_size"]) == (64, 64)  # never upscaled by default
