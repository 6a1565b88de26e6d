"""Admin pages and actions; the whole generate flow with jobs run inline (no Redis worker, demo mode)."""
from django.urls import reverse

from generator.models import AIModel, GenerationJob
from tests.web.conftest import make_finished_job


def test_admin_pages_and_model_actions(client, django_user_model, alice, tiny_model):
    admin = django_user_model.objects.create_superuser("root", password="root-pass-1234")
    client.force_login(admin)
    job, (image,) = make_finished_job(alice, tiny_model)
    for url in (
        reverse("admin:generator_aimodel_changelist"), reverse("admin:generator_generationjob_changelist"),
        reverse("admin:generator_generationjob_changelist") + "?status__exact=done",
        reverse("admin:generator_generationjob_change", args=[job.pk]),
        reverse("admin:generator_generatedimage_changelist"),
        reverse("admin:generator_generatedimage_change", args=[image.pk]),
        reverse("admin:generator_prompthistory_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    assert image.get_file_url() in client.get(reverse("admin:generator_generatedimage_changelist")).content.decode()
    # the admin's thumbnails go through the permission-checked view, which lets staff with view permission in
    assert client.get(image.get_file_url()).status_code == 200

    other = AIModel.objects.create(name="other", source="/models/other", is_active=False)
    changelist = reverse("admin:generator_aimodel_changelist")
    client.post(changelist, {"action": "make_default", "_selected_action": [other.pk]})
    other.refresh_from_db(), tiny_model.refresh_from_db()
    assert other.is_default and other.is_active and not tiny_model.is_default
    client.post(changelist, {"action": "deactivate", "_selected_action": [other.pk]})
    other.refresh_from_db()
    assert not other.is_active and not other.is_default
    client.post(changelist, {"action": "activate", "_selected_action": [other.pk]})
    other.refresh_from_db()
    assert other.is_active


def test_staff_without_permission_cannot_read_private_files(client, django_user_model, alice, tiny_model):
    staff = django_user_model.objects.create_user("staff", password="staff-pass-1234", is_staff=True)
    client.force_login(staff)
    job, (image,) = make_finished_job(alice, tiny_model)
    assert client.get(image.get_file_url()).status_code == 404


def test_inline_mode_runs_the_job_in_the_request(alice_client, tiny_model, settings, django_capture_on_commit_callbacks):
    settings.RETROPORTAL_RUN_JOBS_INLINE = True
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("generate"), {
            "prompt": "retro anime style, inline", "negative_prompt": "", "model": "tiny-sd1", "seed": "7",
            "steps": "2", "guidance_scale": "7", "width": "64", "height": "64", "num_images": "2",
            "scheduler": "euler"})
    job = GenerationJob.objects.get()
    assert response["Location"] == job.get_absolute_url()
    assert job.status == "done", job.error
    assert job.worker_name == "inline"
    assert [(i.seed, i.clip_score is not None) for i in job.images.order_by("index")] == [(7, True), (8, True)]
    status = alice_client.get(reverse("job-status", args=[job.pk])).json()
    assert status["percent"] == 100 and len(status["images"]) == 2
    page = alice_client.get(job.get_absolute_url()).content.decode()
    assert page.count('class="thumb"') == 2 and "CLIP " in page
