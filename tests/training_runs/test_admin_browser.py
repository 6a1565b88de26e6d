"""End to end in Chromium: an admin trains a LoRA in the run admin, watches it, activates it; a user generates.

A real worker process serves both queues ('training' and 'generation'), as one GPU host would.
"""
import re

import pytest
from django.contrib.auth import get_user_model

from generator.models import AIModel, GenerationJob
from tests.conftest import shot, wait_for
from training.models import TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def login_admin(page, url):
    page.goto(f"{url}/admin/login/?next=/admin/")
    page.fill("#id_username", "trainer")
    page.fill("#id_password", "pw-for-tests")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def test_admin_trains_activates_and_a_user_generates_with_it(live_server, page, browser, start_worker,
                                                             base_model, tiny_dataset):
    get_user_model().objects.create_superuser("trainer", "trainer@example.com", "pw-for-tests")
    get_user_model().objects.create_user("alice", password="alice-pass-1234")
    worker = start_worker(queues=("training", "generation"))
    url = live_server.url
    page.set_viewport_size({"width": 1280, "height": 900})
    login_admin(page, url)

    # Create the run: a bad value first (the message sits on its field), then a good one.
    page.goto(f"{url}/admin/training/trainingrun/add/")
    page.fill("#id_name", "retro-lora")
    page.select_option("#id_dataset", label="tiny-girls")
    page.select_option("#id_base_model", label="tiny-sd1")
    page.select_option("#id_method", "lora")
    for field, value in {"rank": "4", "resolution": "32", "max_steps": "0", "checkpoint_steps": "100",
                         "validation_steps": "100", "seed": "7"}.items():
        page.fill(f"#id_{field}", value)
    page.fill("#id_extra_settings", "bucket_step = 16\nvalidation_inference_steps = 2\n")
    page.click("input[name=_continue]")
    assert "max_steps: expected >= 1, got 0" in page.inner_text(".field-max_steps")
    page.fill("#id_max_steps", "240")
    page.click("input[name=_continue]")
    page.wait_for_selector("#run-live")
    assert page.inner_text("#run-status") == "draft"
    run = TrainingRun.objects.get(name="retro-lora")

    # Start it from the change page; the page follows the worker by polling the staff-only JSON endpoint.
    page.click("#run-start")
    page.wait_for_selector("#run-live")
    page.evaluate("""() => {
        window.__seen = [];
        const note = () => window.__seen.push(document.getElementById('run-status').textContent + ' '
                                               + document.getElementById('run-step').textContent);
        note();
        new MutationObserver(note).observe(document.getElementById('run-live'), {childList: true, subtree: true,
                                                                                 characterData: true});
    }""")
    page.wait_for_function("() => document.getElementById('run-status').textContent === 'running'"
                           " && parseInt(document.getElementById('run-step').textContent) > 0", timeout=120_000)
    page.wait_for_function("() => document.getElementById('loss-line').getAttribute('points').split(' ').length > 2")
    assert page.inner_text("#run-eta") != "—"
    page.wait_for_function("() => ['done', 'failed'].includes(document.getElementById('run-status').textContent)",
                           timeout=180_000)
    assert page.inner_text("#run-status") == "done", page.inner_text("#run-error") + worker.log()[-3000:]
    seen = page.evaluate("window.__seen")
    running = [s for s in seen if s.startswith("running ")]
    assert len({s for s in running}) >= 2, seen  # the step moved while we watched
    assert page.inner_text("#run-step") == "240/240"
    page.wait_for_function("() => { const i = document.getElementById('loss-png'); return i.complete && i.naturalWidth > 0; }")
    page.wait_for_function("() => [...document.querySelectorAll('#run-grids img')].length >= 2 && "
                           "[...document.querySelectorAll('#run-grids img')].every(i => i.complete && i.naturalWidth > 0)")
    assert "step 240/240" in page.inner_text("#run-log")
    assert page.inner_text("#run-result-state") == "inactive"
    assert len(page.locator("#loss-line").get_attribute("points").split()) == 240
    shot(page, "training-run-admin")

    # The list shows it too; then activate the registered model.
    page.goto(f"{url}/admin/training/trainingrun/")
    assert "240/240 (100%)" in page.inner_text("#result_list")
    page.goto(f"{url}/admin/training/trainingrun/{run.pk}/change/")
    page.click("#run-activate")
    page.wait_for_selector("#run-result-state")
    assert page.inner_text("#run-result-state") == "active"
    model = AIModel.objects.get(name="retro-lora")
    assert model.is_active and model.kind == "lora" and model.parent == base_model

    # A normal user picks the new model on /generate/ and the job finishes.
    context = browser.new_context()
    user = context.new_page()
    user.set_default_timeout(60_000)
    try:
        user.goto(f"{url}/accounts/login/")
        user.fill("#id_username", "alice")
        user.fill("#id_password", "alice-pass-1234")
        user.click("button:has-text('Sign in')")
        user.wait_for_url(f"{url}/generate/")
        user.select_option("select[name=model]", "retro-lora")
        user.fill("textarea[name=prompt]", "sks girl, retro anime style")
        user.fill("input[name=width]", "64")
        user.fill("input[name=height]", "64")
        user.click("details.advanced summary")
        user.fill("input[name=steps]", "3")
        user.click("#generate-button")
        user.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
        user.wait_for_selector("#job-images[data-rendered='1'] img", timeout=120_000)  # final pictures, not previews
        assert user.locator("#job-status").text_content() == "done"
    finally:
        context.close()
    job = GenerationJob.objects.get(user__username="alice")
    assert job.status == "done" and job.model == model and job.images.count() == 1, job.error
    assert "Lora hashes" in job.images.get().parameters or "retro-lora" in job.images.get().parameters
