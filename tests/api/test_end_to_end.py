"""The whole stack, as an integration would use it: a token from the account page, then plain HTTP
(requests) against a live server; a real `manage.py rqworker` subprocess generates with the tiny SD
model and scores with the tiny open_clip; PostgreSQL and Redis are real.
"""
import io
import re
import time

import pytest
import requests
from django.test import Client
from PIL import Image

from generator.models import AIModel, GeneratedImage
from tests.api.conftest import make_user
from tests.conftest import WorkerProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def worker(transactional_db, redis_clean, tiny_assets):
    process = WorkerProcess(extra_env={"RETROPORTAL_CLIP_MODEL": tiny_assets["clip"]})
    yield process
    process.stop()


def token_from_account_page(user) -> str:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    page = browser.get("/account/token/")
    csrf = browser.cookies["csrftoken"].value
    assert page.status_code == 200
    page = browser.post("/account/token/", {"action": "create", "csrfmiddlewaretoken": csrf})
    return re.search(r'id="api-token-key">([0-9a-f]{40})<', page.content.decode()).group(1)


def test_generate_poll_and_download_over_http(live_server, worker, tiny_assets, settings):
    settings.RETROPORTAL_CLIP_MODEL = tiny_assets["clip"]
    AIModel.objects.create(name="tiny-sd1", source=tiny_assets["model"], architecture="sd1", is_default=True)
    alice = make_user("alice")
    api = requests.Session()
    api.headers["Authorization"] = "Token " + token_from_account_page(alice)
    base = live_server.url + "/api"

    models = api.get(f"{base}/models/", timeout=30).json()["results"]
    assert [(m["name"], m["is_default"]) for m in models] == [("tiny-sd1", True)]

    prompt = "retro anime style, a girl with a red hat, 1980s cel shading"
    response = api.post(f"{base}/generations/", json={
        "prompt": prompt, "negative_prompt": "blurry", "seed": 1234, "steps": 2, "width": 64, "height": 64,
        "num_images": 2, "scheduler": "euler",
    }, timeout=30)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued" and response.headers["Location"] == f"{base}/generations/{job['id']}/"

    deadline = time.monotonic() + 240
    while job["status"] not in ("done", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"job still {job['status']}; worker log:\n{worker.log()[-3000:]}"
        time.sleep(0.3)
        job = api.get(response.headers["Location"], timeout=30).json()
    assert job["status"] == "done", (job["error"], worker.log()[-3000:])
    assert job["error"] == "" and job["queue_position"] is None
    assert {k: job["progress"][k] for k in ("step", "total", "percent")} == {"step": 4, "total": 4, "percent": 100}
    assert (job["progress"]["images"], job["progress"]["eta_seconds"], job["preview_url"]) == (2, None, None)
    assert [image["seed"] for image in job["images"]] == [1234, 1235]

    for listed in job["images"]:
        stored = GeneratedImage.objects.get(pk=listed["id"])
        assert stored.clip_score is not None and -1 <= stored.clip_score <= 1 and stored.clip_error == ""
        assert listed["clip_score"] == pytest.approx(stored.clip_score)

        png = api.get(listed["url"], timeout=30)  # the same token fetches the file
        assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
        picture = Image.open(io.BytesIO(png.content))
        assert picture.size == (64, 64)
        infotext = picture.text["parameters"]
        assert infotext.startswith(prompt) and "Negative prompt: blurry" in infotext
        assert f"Seed: {listed['seed']}" in infotext

        detail = api.get(f"{base}/images/{listed['id']}/", timeout=30).json()
        assert detail["parameters"] == infotext and detail["clip_score"] == pytest.approx(stored.clip_score)
        assert detail["job"] == job["id"] and detail["model"] == "tiny-sd1" and detail["is_public"] is False

    # Without the token the file is not served (the website redirects to its sign-in page).
    assert requests.get(job["images"][0]["url"], allow_redirects=False, timeout=30).status_code == 302
    mine = api.get(f"{base}/images/?ordering=-clip_score", timeout=30).json()
    assert mine["count"] == 2
    scores = [image["clip_score"] for image in mine["results"]]
    assert scores == sorted(scores, reverse=True)
