"""A user never sees another user's private images or jobs; public images are readable by all signed in."""
import pytest
from django.urls import reverse

from generator.models import GeneratedImage, GenerationJob
from tests.web.conftest import make_finished_job


@pytest.fixture
def alices_job(alice, tiny_model):
    return make_finished_job(alice, tiny_model, prompt="alice's secret prompt", n=1)


def test_owner_sees_everything(alice_client, alices_job):
    job, (image,) = alices_job
    assert alice_client.get(reverse("image-detail", args=[image.pk])).status_code == 200
    response = alice_client.get(reverse("image-file", args=[image.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    assert "attachment" not in response.get("Content-Disposition", "")
    download = alice_client.get(reverse("image-file", args=[image.pk]), {"download": "1"})
    assert download["Content-Disposition"].startswith("attachment; filename=")
    assert alice_client.get(reverse("job-detail", args=[job.pk])).status_code == 200
    status = alice_client.get(reverse("job-status", args=[job.pk])).json()
    assert status["status"] == "done" and status["images"][0]["clip_score"] == 0.25
    gallery = alice_client.get(reverse("gallery")).content.decode()
    assert image.get_file_url() in gallery and "CLIP 0.250" in gallery


def test_other_users_get_404_for_private_things(bob_client, alices_job):
    job, (image,) = alices_job
    for url in (
        reverse("image-detail", args=[image.pk]),
        reverse("image-file", args=[image.pk]),
        reverse("image-file", args=[image.pk]) + "?download=1",
        reverse("image-delete", args=[image.pk]),
        reverse("job-detail", args=[job.pk]),
        reverse("job-status", args=[job.pk]),
        reverse("job-preview", args=[job.pk]),
        reverse("generate") + f"?reuse={image.pk}",  # a plain form, not her settings
    ):
        response = bob_client.get(url)
        if url.startswith(reverse("generate")):
            assert "secret" not in response.content.decode()
        else:
            assert response.status_code == 404, url
    for url in (
        reverse("job-cancel", args=[job.pk]),
        reverse("image-publish", args=[image.pk]),
        reverse("image-delete", args=[image.pk]),
    ):
        assert bob_client.post(url, {"public": "1"}).status_code == 404, url
    image.refresh_from_db()
    assert GeneratedImage.objects.filter(pk=image.pk, is_public=False).exists()
    assert "secret" not in bob_client.get(reverse("gallery")).content.decode()
    assert "secret" not in bob_client.get(reverse("explore")).content.decode()
    assert "secret" not in bob_client.get(reverse("job-list")).content.decode()


def test_published_images_are_visible_but_stay_owner_managed(alice_client, bob_client, alices_job):
    job, (image,) = alices_job
    response = alice_client.post(reverse("image-publish", args=[image.pk]), {"public": "1"})
    assert response.status_code == 302
    assert bob_client.get(reverse("image-detail", args=[image.pk])).status_code == 200
    assert bob_client.get(reverse("image-file", args=[image.pk])).status_code == 200
    explore = bob_client.get(reverse("explore")).content.decode()
    assert "alice&#x27;s secret prompt" in explore and "by alice" in explore
    page = bob_client.get(reverse("image-detail", args=[image.pk])).content.decode()
    assert "Unpublish" not in page and "Delete" not in page
    # still owner-only: job, status, publish, delete
    assert bob_client.get(reverse("job-detail", args=[job.pk])).status_code == 404
    assert bob_client.get(reverse("job-status", args=[job.pk])).status_code == 404
    assert bob_client.post(reverse("image-publish", args=[image.pk]), {"public": "0"}).status_code == 404
    assert bob_client.post(reverse("image-delete", args=[image.pk])).status_code == 404
    # unpublish: gone again for bob
    alice_client.post(reverse("image-publish", args=[image.pk]), {"public": "0"})
    assert bob_client.get(reverse("image-file", args=[image.pk])).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, alices_job):
    """Everything but the public pages (home, Explore, profiles, published pictures: tests/gallery) asks to sign
    in; a private picture's page and file too (a redirect, so its existence is not confirmed either)."""
    job, (image,) = alices_job
    assert not image.is_public
    for url in (
        reverse("generate"), reverse("gallery"), reverse("history"), reverse("collection-list"),
        reverse("image-detail", args=[image.pk]), reverse("image-file", args=[image.pk]),
        reverse("job-detail", args=[job.pk]), reverse("job-status", args=[job.pk]),
    ):
        response = client.get(url, follow=True)
        assert response.redirect_chain, url
        assert response.redirect_chain[-1][0].startswith(reverse("login")), url
    assert client.post(reverse("job-cancel", args=[job.pk])).status_code == 302


def test_media_is_not_served_by_url_prefix(alice_client, alices_job, settings):
    job, (image,) = alices_job
    assert image.file.name.startswith("generations/")
    assert alice_client.get("/media/" + image.file.name).status_code == 404
    assert alice_client.get(settings.MEDIA_URL + image.file.name).status_code == 404


def test_owner_can_delete_an_image_and_its_file(alice_client, alices_job, django_capture_on_commit_callbacks):
    job, (image,) = alices_job
    storage, name = image.file.storage, image.file.name
    assert storage.exists(name)
    assert alice_client.get(reverse("image-delete", args=[image.pk])).status_code == 200  # the confirm page
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("image-delete", args=[image.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("gallery")
    assert not GeneratedImage.objects.filter(pk=image.pk).exists()
    assert not storage.exists(name)
    assert GenerationJob.objects.filter(pk=job.pk).exists()
