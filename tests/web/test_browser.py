"""End to end in headless Chromium: sign up, sign out, sign in, generate, watch progress, gallery,
image page, download the PNG and read its A1111 `parameters` chunk. Screenshots go to test-artifacts/."""
import io
import re

import pytest
from PIL import Image

from tests.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROMPT = "retro anime style, 1990s cel shading, a girl with a red scarf & <b>bold</b> hat"
PASSWORD = "Retro-Portal-1985!"


def test_sign_up_generate_and_download(page, live_server, tiny_model, worker):
    page.set_viewport_size({"width": 1280, "height": 860})
    url = live_server.url

    # The signed-out home page is Explore with a call to sign up (switched on by default),
    # which signs the new user in.
    page.goto(f"{url}/")
    assert page.url == f"{url}/"
    page.click("#signup-cta")
    page.fill("#id_username", "retrofan")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("button:has-text('Sign up')")
    page.wait_for_url(f"{url}/generate/")
    assert page.locator(".whoami").inner_text() == "retrofan"

    # Sign out (a POST form), then sign in again.
    page.click("#sign-out")
    page.wait_for_url(re.compile(r"/accounts/login/"))
    assert page.locator("#sign-out").count() == 0
    page.fill("#id_username", "retrofan")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{url}/generate/")

    # The generate form: prompt, small size, advanced settings in a <details>.
    prompt = page.locator("textarea[name=prompt]")
    assert prompt.get_attribute("placeholder") == "Please enter your prompt here!"
    prompt.fill(PROMPT)
    page.fill("input[name=width]", "64")
    page.fill("input[name=height]", "64")
    page.fill("input[name=seed]", "1234")
    page.click("#seed-random")
    assert page.input_value("input[name=seed]") == "-1"
    page.click("details.advanced summary")
    page.fill("input[name=steps]", "4")
    page.select_option("select[name=scheduler]", "euler")
    assert page.input_value("select[name=model]") == "tiny-sd1"
    shot(page, "generate")
    page.click("#generate-button")

    # The job page: record every text the progress line shows until the job is done.
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    page.evaluate("""() => {
        const el = document.getElementById('progress-text');
        window.__seen = [el.textContent.trim()];
        new MutationObserver(() => window.__seen.push(el.textContent.trim()))
            .observe(el, {childList: true, characterData: true, subtree: true});
    }""")
    page.wait_for_selector("#job-images[data-rendered='1'] img", timeout=120_000)  # the final pictures, not previews
    page.wait_for_function("() => [...document.querySelectorAll('#job-images img')].every(i => i.naturalWidth > 0)")
    seen = [text for i, text in enumerate(page.evaluate("window.__seen")) if i == 0 or text]
    assert seen[-1] == "Done.", seen
    assert len(set(seen)) >= 2, seen  # the text changed while we watched (queued/starting/steps -> done)
    assert page.locator("#job-status").text_content() == "done"
    assert page.locator("#cancel-form").is_hidden()
    assert PROMPT in page.locator(".prompt").first.inner_text()  # shown as text, not as HTML
    print("progress texts seen:", seen)
    page.wait_for_timeout(400)  # let the progress bar's transition reach 100 % for the screenshot
    shot(page, "job")

    # The gallery shows it with its CLIP score.
    page.click("nav >> text=Gallery")
    page.wait_for_url(f"{url}/gallery/")
    thumb = page.locator(".thumb").first
    assert re.fullmatch(r"CLIP -?\d\.\d{3}", thumb.locator(".clip").inner_text())
    page.wait_for_function("() => document.querySelector('.thumb img').naturalWidth > 0")
    shot(page, "gallery")

    # The image page: prompt, parameters, CLIP score; download the PNG with its metadata.
    thumb.locator("a.lb-open").click()  # the lightbox first, then its link to the picture's page
    page.click("#lb-page")
    page.wait_for_url(re.compile(r"/images/[0-9a-f-]{36}/$"))
    assert page.locator("#image-prompt").inner_text() == PROMPT
    assert re.fullmatch(r"-?\d\.\d{4}", page.locator("#clip-score").inner_text())
    infotext = page.locator("#infotext").inner_text()
    assert infotext.startswith(PROMPT) and "Steps: 4" in infotext and "Size: 64x64" in infotext
    shot(page, "image")
    with page.expect_download() as download_info:
        page.click("#download")
    download = download_info.value
    assert download.suggested_filename.endswith(".png")
    data = open(download.path(), "rb").read()
    png = Image.open(io.BytesIO(data))
    assert png.size == (64, 64)
    parameters = png.text["parameters"]
    assert PROMPT in parameters and "Seed:" in parameters and "Sampler:" in parameters
    assert parameters == infotext

    # "Reuse these settings" fills the form with this image's seed.
    page.click("#reuse")
    page.wait_for_url(re.compile(r"/generate/\?reuse="))
    assert page.input_value("textarea[name=prompt]") == PROMPT
    seed = re.search(r"Seed: (\d+)", parameters).group(1)
    assert page.input_value("input[name=seed]") == seed
