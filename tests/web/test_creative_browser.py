"""The creative controls in headless Chromium, on the real stack (live server, PostgreSQL, Redis, a real RQ
worker with the tiny SD model): read PNG info into the form, upload a picture, paint a mask with the brush
and erase part of it, inpaint, watch the job page's previews update, then read the result's PNG info back.
Screenshots go to test-artifacts/, and to docs/screenshots/ (committed) with RETROPORTAL_DOCS_SCREENSHOTS=1."""
import io
import re

import pytest
from PIL import Image, ImageStat

from generator.models import GenerationJob
from tests import pictures as pics
from tests.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

A1111_INFOTEXT = (
    "retro anime style, 1980s cel shading, (a girl:1.2) with a red scarf\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 7, Sampler: Euler a, Schedule type: Automatic, CFG scale: 6.5, Seed: 4242, Size: 256x256, "
    "Model hash: 0123456789, Model: tiny-sd1, Version: v1.10.1"
)
SIDE = 256  # big enough that a step takes a visible moment on one CPU thread, so previews can be watched


def png_with_parameters(tmp_path, text, name):
    from generator.engine.infotext import encode_png

    path = tmp_path / name
    path.write_bytes(encode_png(pics.gradient(32, 32), text) if text is not None else pics.encode(pics.gradient()))
    return path


def sign_in(page, url, user, password):
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{url}/generate/")


def paint(page, selector, points):
    page.locator(selector).scroll_into_view_if_needed()  # the mouse works in viewport coordinates
    box = page.locator(selector).bounding_box()
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + points[0][0] * box["width"], y0 + points[0][1] * box["height"])
    page.mouse.down()
    for fx, fy in points[1:]:
        page.mouse.move(x0 + fx * box["width"], y0 + fy * box["height"], steps=8)
    page.mouse.up()


def test_read_png_info_upload_paint_inpaint_and_watch_previews(page, live_server, tiny_model, worker, alice,
                                                              tmp_path):
    page.set_viewport_size({"width": 1280, "height": 900})
    url = live_server.url
    sign_in(page, url, alice, "alice-pass-1234")

    # The token counter answers from the model's tokenizer as the prompt is typed.
    page.fill("#id_prompt", "retro anime style, a girl")
    page.wait_for_function("() => /^\\d+\\/75 tokens$/.test(document.getElementById('prompt-tokens').textContent)")

    # Read PNG info: a PNG without settings says so and changes nothing; an A1111 PNG fills the form.
    page.set_input_files("#pnginfo-file", str(png_with_parameters(tmp_path, None, "plain.png")))
    page.wait_for_selector("#pnginfo-message:not([hidden])")
    assert "has no generation settings" in page.inner_text("#pnginfo-message")
    assert page.input_value("#id_prompt") == "retro anime style, a girl"
    page.set_input_files("#pnginfo-file", str(png_with_parameters(tmp_path, A1111_INFOTEXT, "a1111.png")))
    page.wait_for_function("() => document.getElementById('pnginfo-message').textContent.includes('a1111.png')")
    assert page.input_value("#id_prompt") == "retro anime style, 1980s cel shading, (a girl:1.2) with a red scarf"
    assert page.input_value("#id_negative_prompt") == "blurry, lowres"
    assert (page.input_value("#id_steps"), page.input_value("#id_seed"), page.input_value("#id_guidance_scale")) == \
        ("7", "4242", "6.5")
    assert (page.input_value("#id_width"), page.input_value("#id_height")) == ("256", "256")
    assert page.input_value("#id_scheduler") == "euler_a"
    assert "AUTOMATIC1111" in page.inner_text("#pnginfo-message")
    shot(page, "generate-pnginfo", docs=True)

    # Upload a picture: the mask editor opens over it; paint with the brush, erase a corner of the stroke.
    init = tmp_path / "init.png"
    init.write_bytes(pics.encode(pics.gradient(SIDE, SIDE)))
    page.click("#img2img summary")
    page.set_input_files("#id_init_image", str(init))
    page.wait_for_selector("#mask-editor:not([hidden])")
    page.wait_for_function("() => document.getElementById('mask-canvas').width >= 512")
    paint(page, "#mask-canvas", [(0.3, 0.5), (0.5, 0.45), (0.7, 0.5)])
    page.wait_for_function("() => document.getElementById('mask-state').textContent.includes('Mask painted')")
    page.check("#mask-eraser")
    paint(page, "#mask-canvas", [(0.66, 0.4), (0.72, 0.6)])
    page.check("#mask-brush")
    page.fill("#id_strength", "1")
    page.fill("#id_steps", "12")
    page.fill("#id_num_images", "2")
    page.select_option("#id_scheduler", "euler")
    shot(page, "generate-inpaint", docs=True)

    # Inpaint; the job page shows image k of N, step s of S, ETA, and previews that change while it runs.
    page.click("#generate-button")
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    page.evaluate("""() => {
        window.__texts = []; window.__previews = [];
        const text = document.getElementById('progress-text');
        new MutationObserver(() => window.__texts.push(text.textContent.trim()))
            .observe(text, {childList: true, characterData: true, subtree: true});
        new MutationObserver(() => document.querySelectorAll('#job-images img.preview-img').forEach(img => {
            if (img.complete && img.naturalWidth > 0 && !window.__previews.includes(img.src)) window.__previews.push(img.src);
        })).observe(document.getElementById('job-images'), {childList: true, subtree: true, attributes: true});
    }""")
    page.wait_for_selector("#job-images img.preview-img", timeout=180_000)
    page.wait_for_function("() => /image \\d of 2 · step \\d+ of 12 · ETA/.test("
                           "document.getElementById('progress-text').textContent)", timeout=120_000)
    shot(page, "job-preview", docs=True)
    page.wait_for_function("() => document.getElementById('job-status').textContent === 'done'", timeout=300_000)
    page.wait_for_function("() => [...document.querySelectorAll('#job-images img')].length === 2 && "
                           "[...document.querySelectorAll('#job-images img')].every(i => i.naturalWidth > 0)")
    texts, previews = page.evaluate("window.__texts"), page.evaluate("window.__previews")
    assert any(re.match(r"image 1 of 2 · step \d+ of 12", t) for t in texts), texts
    assert any(re.match(r"image 2 of 2 · step \d+ of 12", t) for t in texts), texts
    assert len(previews) >= 2, previews  # the preview was replaced while the images denoised
    assert page.locator("#job-images img.preview-img").count() == 0  # the final pictures replaced them
    page.wait_for_timeout(400)
    shot(page, "job-inpainted", docs=True)

    job = GenerationJob.objects.get(user=alice)
    assert job.status == "done" and job.steps == 12 and job.num_images == 2 and job.strength == 1.0
    with job.mask_image.open("rb") as handle:
        mask = Image.open(handle).convert("L")
    assert mask.width >= 512 and mask.width == mask.height  # the picture's shape
    w = mask.width
    assert mask.getpixel((int(0.5 * w), int(0.45 * w))) == 255  # painted
    assert mask.getpixel((int(0.1 * w), int(0.1 * w))) == 0  # never painted
    assert mask.getpixel((int(0.69 * w), int(0.5 * w))) == 0  # painted, then erased
    assert 0 < ImageStat.Stat(mask).mean[0] < 64

    # Read the result's PNG info back into the form.
    image = job.images.order_by("index").first()
    result = tmp_path / "result.png"
    result.write_bytes(page.request.get(f"{url}{image.get_file_url()}").body())
    page.goto(f"{url}/generate/")
    page.set_input_files("#pnginfo-file", str(result))
    page.wait_for_function("() => document.getElementById('pnginfo-message').textContent.includes('result.png')")
    parameters = Image.open(io.BytesIO(result.read_bytes())).text["parameters"]
    assert page.input_value("#id_prompt") == job.prompt
    assert page.input_value("#id_seed") == str(image.seed)
    assert page.input_value("#id_steps") == "12" and page.input_value("#id_scheduler") == "euler"
    assert "Denoising strength: 1" in parameters and page.input_value("#id_strength") == "1"
    # the filled prompt is counted again (the counter follows programmatic fills, not only typing)
    page.wait_for_function("() => /^1[0-9]\\/75 tokens/.test(document.getElementById('prompt-tokens').textContent)")
    shot(page, "generate-pnginfo-result")
