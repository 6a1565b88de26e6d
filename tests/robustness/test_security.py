"""Security review: each test asserts the refusal.

Covered elsewhere (not repeated here): another user's private job/image/file pages and API objects answer
404 (tests/web/test_isolation.py, tests/api/test_api.py), zip-slip and zip-bomb dataset uploads
(tests/datasets/test_admin.py), the dataset file view's `..` and non-staff refusal (same file),
`check --deploy` and the required SECRET_KEY (tests/test_settings.py).
"""
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from generator.models import GeneratedImage, GenerationJob, PromptHistory
from tests.web.conftest import make_finished_job
from tests.web.test_forms import VALID

pytestmark = pytest.mark.django_db

XSS = '<script>alert("xss")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def alices_job(alice, tiny_model):
    return make_finished_job(alice, tiny_model, prompt="alice's secret prompt", n=1)


@pytest.fixture
def strict(alice):
    """Alice signed in, with CSRF checks on (the test client skips them by default)."""
    c = Client(enforce_csrf_checks=True)
    c.force_login(alice)
    return c


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # sign-in failure counts
    yield
    cache.clear()


# ----------------------------------------------------------------------------------------------- CSRF


def test_every_post_form_needs_the_csrf_token(strict, alice, alices_job):
    from rest_framework.authtoken.models import Token

    job, (image,) = alices_job
    queued = GenerationJob.objects.create(user=alice, model=job.model, prompt="queued", seed=1, steps=2,
                                          guidance_scale=7, width=64, height=64, num_images=1, scheduler="euler")
    Token.objects.create(user=alice)
    posts = [
        (reverse("generate"), VALID),
        (reverse("job-cancel", args=[queued.pk]), {}),
        (reverse("image-publish", args=[image.pk]), {"public": "1"}),
        (reverse("image-delete", args=[image.pk]), {}),
        (reverse("account-token"), {"action": "create"}),
        (reverse("account-token"), {"action": "revoke"}),
        (reverse("logout"), {}),
    ]
    for url, data in posts:
        response = strict.post(url, data)
        assert response.status_code == 403, url
        assert "CSRF" in response.content.decode(), url
    # Nothing changed.
    assert GenerationJob.objects.count() == 2 and GenerationJob.objects.get(pk=queued.pk).status == "queued"
    image.refresh_from_db()
    assert not image.is_public and GeneratedImage.objects.filter(pk=image.pk).exists()
    assert Token.objects.filter(user=alice).count() == 1
    assert strict.get(reverse("gallery")).status_code == 200  # still signed in
    # API over the session cookie: CSRF applies too (token-authenticated clients carry no cookie).
    api = strict.post("/api/generations/", {"prompt": "retro"}, content_type="application/json")
    assert api.status_code == 403 and "CSRF" in api.json()["detail"]


def test_sign_in_and_sign_up_need_the_csrf_token(alice):
    anonymous = Client(enforce_csrf_checks=True)
    response = anonymous.post(reverse("login"), {"username": "alice", "password": "alice-pass-1234"})
    assert response.status_code == 403 and "_auth_user_id" not in anonymous.session
    response = anonymous.post(reverse("signup"), {"username": "mallory", "password1": "Zq8!long-enough-pw",
                                                  "password2": "Zq8!long-enough-pw"})
    assert response.status_code == 403
    assert not get_user_model().objects.filter(username="mallory").exists()
    # Positive control: with the token from the page the same client signs in.
    page = anonymous.get(reverse("login"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    response = anonymous.post(reverse("login"), {"username": "alice", "password": "alice-pass-1234",
                                                 "csrfmiddlewaretoken": token})
    assert response.status_code == 302


# ------------------------------------------------------------------------------------ sign-in lockout


def test_repeated_failed_sign_ins_lock_the_account_for_that_address(alice, client, settings):
    settings.RETROPORTAL_LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
        assert response.status_code == 200 and "Please enter a correct username" in response.content.decode()
    # Locked: even the right password is refused, with a clear message.
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-pass-1234"})
    text = response.content.decode()
    assert response.status_code == 200 and "Too many failed sign-in attempts" in text and "try again later" in text
    assert "_auth_user_id" not in client.session
    # Case does not get around it; another address is not locked out by this one.
    response = client.post(reverse("login"), {"username": "ALICE", "password": "alice-pass-1234"})
    assert "Too many failed sign-in attempts" in response.content.decode()
    elsewhere = Client(REMOTE_ADDR="10.9.8.7")
    assert elsewhere.post(reverse("login"), {"username": "alice", "password": "alice-pass-1234"}).status_code == 302
    # The lock ends with the window.
    cache.clear()
    assert client.post(reverse("login"), {"username": "alice", "password": "alice-pass-1234"}).status_code == 302


def test_a_successful_sign_in_resets_the_count(alice, settings):
    settings.RETROPORTAL_LOGIN_MAX_FAILURES = 3
    c = Client()
    for _ in range(2):
        c.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert c.post(reverse("login"), {"username": "alice", "password": "alice-pass-1234"}).status_code == 302
    c.logout()
    for _ in range(2):
        c.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert c.post(reverse("login"), {"username": "alice", "password": "alice-pass-1234"}).status_code == 302


# ---------------------------------------------------------------------------------- password validators


@pytest.mark.parametrize("password", ["password123", "12345678901", "short1!", "mallory-user"])
def test_sign_up_refuses_weak_passwords(client, password):
    response = client.post(reverse("signup"), {"username": "mallory-user", "password1": password,
                                               "password2": password})
    assert response.status_code == 200 and 'class="field-error"' in response.content.decode()
    assert not get_user_model().objects.filter(username="mallory-user").exists()


# ------------------------------------------------------------------------------------------ admin only


ADMIN_URLS = [
    "/admin/", "/admin/auth/user/", "/admin/generator/generationjob/", "/admin/generator/generatedimage/",
    "/admin/generator/aimodel/", "/admin/generator/aimodel/add/", "/admin/training/dataset/",
    "/admin/training/dataset/add/", "/admin/training/trainingrun/", "/admin/training/dataset/1/file/manifest.json",
    "/admin/training/trainingrun/1/status.json", "/admin/training/trainingrun/1/file/train.log",
]


def test_admin_is_unreachable_for_normal_users(alice_client, django_user_model):
    for url in ADMIN_URLS:
        response = alice_client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url
    response = alice_client.post("/admin/training/trainingrun/1/do/start/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    # Staff without model permissions: refused too.
    staff = django_user_model.objects.create_user("staffer", password="pw-for-tests-123", is_staff=True)
    c = Client()
    c.force_login(staff)
    assert c.get("/admin/").status_code == 200
    for url in ADMIN_URLS[1:]:
        assert c.get(url).status_code in (403, 404), url
    # There is no RQ dashboard or other operator page outside /admin/, and the API has no admin endpoints.
    for url in ("/django-rq/", "/rq/", "/api/users/", "/api/tokens/"):
        assert alice_client.get(url).status_code == 404, url


# ------------------------------------------------------------------------------------ object URLs (IDOR)


CHECKED_OBJECT_URLS = {
    # website (tests/web/test_isolation.py covers these for another user's objects)
    "job-detail", "job-status", "job-preview", "job-cancel", "image-detail", "image-file", "image-publish", "image-delete",
    # gallery (tests/gallery/)
    "image-like", "image-report", "image-tags", "collection-detail", "collection-edit", "collection-delete",
    "collection-add", "collection-remove", "profile", "model-page", "model-download",
    # API (tests/api/test_api.py)
    "api:generation-detail", "api:generation-cancel", "api:image-detail", "api:model-detail",
    # gallery API (tests/gallery/test_api.py)
    "gallery-api:image-like", "gallery-api:collection-detail", "gallery-api:collection-images",
    "gallery-api:collection-image", "gallery-api:user-images",
    # admin: staff with permissions only (test_admin_is_unreachable_for_normal_users + Django's admin)
}


def _object_url_names(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if "admin" in str(entry.pattern):
                continue
            ns = f"{entry.namespace}:" if entry.namespace else ""
            yield from _object_url_names(entry, prefix + ns)
        elif isinstance(entry, URLPattern) and entry.name and "<" in str(entry.pattern):
            yield prefix + entry.name


def test_every_object_url_outside_the_admin_is_covered_by_an_isolation_test():
    names = set(_object_url_names())
    assert names, "no object URLs found"
    assert names <= CHECKED_OBJECT_URLS, f"new object URLs need an isolation test: {names - CHECKED_OBJECT_URLS}"


def test_foreign_prompt_history_and_reuse_ids_give_a_plain_form(alice, bob_client, alices_job):
    job, (image,) = alices_job
    entry = PromptHistory.objects.create(user=alice, prompt="alice's secret prompt", last_job=job)
    for query in (f"?history={entry.pk}", f"?reuse={image.pk}", f"?remix={image.pk}", f"?vary={image.pk}", "?history=../../1", "?reuse=not-a-uuid"):
        response = bob_client.get(reverse("generate") + query)
        assert response.status_code == 200 and "secret" not in response.content.decode(), query


def test_api_cannot_cancel_or_change_someone_elses_job_or_image(alice, bob, alices_job):
    from rest_framework.authtoken.models import Token

    job, (image,) = alices_job
    c = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=bob).key}")
    assert c.post(f"/api/generations/{job.pk}/cancel/").status_code == 404
    assert c.patch(f"/api/images/{image.pk}/", {"is_public": True}, content_type="application/json").status_code == 404
    assert c.delete(f"/api/images/{image.pk}/").status_code == 404
    assert c.get(reverse("image-file", args=[image.pk])).status_code == 404
    image.refresh_from_db()
    assert not image.is_public


# ---------------------------------------------------------------------------------------- HTML injection


def test_html_in_prompts_is_escaped_everywhere_it_is_shown(alice, alice_client, bob_client, tiny_model,
                                                           django_user_model):
    job, (image,) = make_finished_job(alice, tiny_model, prompt=XSS, public=True)
    GenerationJob.objects.filter(pk=job.pk).update(negative_prompt=XSS, error=XSS, warnings=XSS)
    PromptHistory.objects.create(user=alice, prompt=XSS, negative_prompt=XSS, last_job=job)
    assert XSS in image.parameters  # the PNG's `parameters` chunk, as shown on the image page
    pages = {
        "gallery": (alice_client, reverse("gallery")),
        "job page": (alice_client, reverse("job-detail", args=[job.pk])),
        "job list": (alice_client, reverse("job-list")),
        "image page": (alice_client, reverse("image-detail", args=[image.pk])),
        "image page (other user)": (bob_client, reverse("image-detail", args=[image.pk])),
        "explore": (bob_client, reverse("explore")),
        "history": (alice_client, reverse("history")),
        "reuse form": (alice_client, reverse("generate") + f"?reuse={image.pk}"),
        "generate (recent jobs)": (alice_client, reverse("generate")),
    }
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "pw-for-tests-123")
    admin_client = Client()
    admin_client.force_login(admin)
    pages.update({
        "admin job": (admin_client, f"/admin/generator/generationjob/{job.pk}/change/"),
        "admin image": (admin_client, f"/admin/generator/generatedimage/{image.pk}/change/"),
        "admin job list": (admin_client, "/admin/generator/generationjob/"),
        "admin history": (admin_client, "/admin/generator/prompthistory/"),
    })
    for name, (c, url) in pages.items():
        response = c.get(url)
        if response.status_code == 404 and name == "admin history":
            continue  # not registered in the admin
        html = response.content.decode()
        assert response.status_code == 200, (name, response.status_code)
        assert "<script>alert" not in html and "<img src=x" not in html, name
        assert "&lt;script&gt;" in html or "\\u003Cscript\\u003E" in html, name


def test_html_in_dataset_captions_and_names_is_escaped_in_the_admin(django_user_model):
    from training.models import Dataset, DatasetImage

    dataset = Dataset.objects.create(name="xss-set", instance_prompt=XSS, class_prompt=XSS, status="done",
                                     manifest={"records": [{"source": XSS, "status": "rejected", "reason": XSS}]})
    DatasetImage.objects.create(dataset=dataset, output_name="images/0000.png", source_name=XSS + ".png",
                                caption=XSS, width=64, height=64, sha256="0" * 64)
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "pw-for-tests-123")
    c = Client()
    c.force_login(admin)
    for url in (f"/admin/training/dataset/{dataset.pk}/change/", "/admin/training/dataset/?q=%3Cscript%3E"):
        response = c.get(url)
        html = response.content.decode()
        assert response.status_code == 200, url
        assert "<script>alert" not in html and "<img src=x" not in html and "<script>" not in html.split(
            "<!-- END SVGs -->")[0].split("</head>")[1], url
    change = c.get(f"/admin/training/dataset/{dataset.pk}/change/").content.decode()
    assert change.count("&lt;script&gt;") >= 3  # prompt, class prompt, caption, source name, manifest reason


# ---------------------------------------------------------------------------------------- path traversal


@pytest.mark.parametrize("rel", [
    "../originals/p0.png", "..%2Foriginals%2Fp0.png", "images/../../originals/p0.png", "%2e%2e/%2e%2e/x.png",
    "/etc/passwd", "..%5c..%5cx.png", "images/0000.png%00.txt", "linked.png",
])
def test_dataset_file_view_refuses_paths_outside_the_prepared_folder(rel, django_user_model, settings, tmp_path):
    from training.models import Dataset

    settings.MEDIA_ROOT = tmp_path
    dataset = Dataset.objects.create(name="trav", instance_prompt="sks", status="done")
    (dataset.prepared_dir / "images").mkdir(parents=True)
    (dataset.prepared_dir / "images" / "0000.png").write_bytes(b"\x89PNG fine")
    dataset.originals_dir.mkdir(parents=True)
    (dataset.originals_dir / "p0.png").write_bytes(b"\x89PNG original")
    (dataset.prepared_dir / "linked.png").symlink_to(dataset.originals_dir / "p0.png")  # a link out of it
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "pw-for-tests-123")
    c = Client()
    c.force_login(admin)
    base = f"/admin/training/dataset/{dataset.pk}/file/"
    assert c.get(base + "images/0000.png").status_code == 200  # control
    assert c.get(base + rel).status_code == 404


@pytest.mark.parametrize("name", ["../../evil.png", "..\\..\\evil.png", "/etc/cron.d/evil.png", "sub/../../evil.png"])
def test_upload_names_cannot_climb_out_of_the_dataset(name, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from training import datasets
    from training.models import Dataset

    settings.MEDIA_ROOT = tmp_path
    dataset = Dataset.objects.create(name="uploads", instance_prompt="sks")
    try:
        stored = datasets.add_uploads(dataset, [SimpleUploadedFile(name, b"\x89PNG data")])
    except datasets.UploadRefused:
        stored = []
    for rel in stored:
        assert (dataset.originals_dir / rel).resolve().is_relative_to(dataset.originals_dir.resolve())
    assert not list(tmp_path.rglob("evil.png")) or all(
        p.resolve().is_relative_to(dataset.originals_dir.resolve()) for p in tmp_path.rglob("evil.png"))
    assert not (tmp_path / "evil.png").exists() and not (tmp_path.parent / "evil.png").exists()


def test_oversized_bodies_are_refused(alice_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = alice_client.post(reverse("generate"), {**VALID, "prompt": "x" * 20_000})
    assert response.status_code == 400
