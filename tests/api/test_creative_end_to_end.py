"""The creative controls end to end over HTTP, as an integration uses them: JSON (pictures as base64 / data URLs)
against a live server, a real `manage.py rqworker` drawing with the tiny SD model (and a tiny LoRA), real
PostgreSQL and Redis. Each feature by JSON, the remix by init_image_id, and live progress with a preview URL
that the same token fetches while the job runs."""
import io
import time

import pytest
import requests
from PIL import Image, ImageChops

from generator.engine.infotext import parse_infotext
from generator.models import AIModel
from tests import pictures as pics
from tests.api.conftest import make_user
from tests.api.test_end_to_end import token_from_account_page
from tests.conftest import WorkerProcess

pytestmark = pytest.mark.slow
FINAL = ("done", "failed", "cancelled")


@pytest.fixture
def stack(live_server, transactional_db, redis_clean, tiny_assets, tmp_path_factory, settings):
    from generator.engine.tiny import save_tiny_lora

    settings.RETROPORTAL_CLIP_MODEL = tiny_assets["clip"]
    settings.RETROPORTAL_MAX_QUEUED_JOBS_PER_USER = 20  # one test submits every control at once
    base = AIModel.objects.create(name="tiny-sd1", source=tiny_assets["model"], architecture="sd1", is_default=True,
                                native_size=64)
    folder = tmp_path_factory.mktemp("loras")
    for name, seed in (("retro-style", 1), ("sketch-style", 2)):
        path = save_tiny_lora("sd1", folder / f"{name}.safetensors", seed=seed)
        AIModel.objects.create(name=name, source=str(path), kind="lora", parent=base, architecture="sd1")
    worker = WorkerProcess(extra_env={"RETROPORTAL_CLIP_MODEL": tiny_assets["clip"]})
    api = requests.Session()
    api.headers["Authorization"] = "Token " + token_from_account_page(make_user("alice"))
    yield api, live_server.url + "/api", worker
    worker.stop()


def submit(api, base, **body):
    response = api.post(f"{base}/generations/", json={"prompt": "retro anime style, a girl with a red scarf",
                                                      "steps": 4, "scheduler": "euler", "seed": 77, **body}, timeout=60)
    assert response.status_code == 202, response.text
    return response.json()


def finish(api, base, job, worker, timeout=300, on_poll=None):
    deadline = time.monotonic() + timeout
    while job["status"] not in FINAL:
        assert time.monotonic() < deadline, f"job still {job['status']}; worker log:\n{worker.log()[-3000:]}"
        time.sleep(0.75)  # under the API's 120 requests a minute (RETROPORTAL_API_RATE)
        job = api.get(f"{base}/generations/{job['id']}/", timeout=60).json()
        if on_poll is not None:
            on_poll(job)
    assert job["status"] == "done", (job["error"], worker.log()[-3000:])
    return job


def picture(api, image) -> tuple[Image.Image, dict]:
    png = api.get(image["url"], timeout=60)
    assert png.status_code == 200
    loaded = Image.open(io.BytesIO(png.content))
    return loaded.convert("RGB"), parse_infotext(loaded.text["parameters"])


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    diff = ImageChops.difference(a, b.resize(a.size))
    return sum(sum(px) for px in diff.getdata()) / (a.width * a.height * 3)


def test_each_creative_control_by_json(stack):
    api, base, worker = stack
    init = pics.gradient(64, 64)
    init_b64 = pics.b64(pics.encode(init))
    jobs = {
        "plain": submit(api, base),
        "img2img_low": submit(api, base, init_image=init_b64, strength=0.25),
        "img2img_full": submit(api, base, init_image=pics.data_url(pics.encode(init)), strength=1.0),
        "inpaint": submit(api, base, init_image=init_b64, mask_image=pics.data_url(pics.encode(pics.mask())),
                          mask_blur=2, strength=1.0),
        "hires": submit(api, base, width=64, height=64, hires_scale=2, hires_steps=2, hires_strength=0.5),
        "weighted": submit(api, base, prompt="retro anime style, a girl with a (red scarf:1.5)"),
        "weight_one": submit(api, base, prompt="retro anime style, a girl with a (red scarf:1.0)"),
        "loras": submit(api, base, loras=[{"name": "retro-style", "scale": 0.8}, {"name": "sketch-style", "scale": -0.5}]),
        "variation_0": submit(api, base, variation_seed=5, variation_strength=0.0),
        "variation": submit(api, base, variation_seed=5, variation_strength=0.5),
    }
    done = {name: finish(api, base, job, worker) for name, job in jobs.items()}
    got = {name: picture(api, job["images"][0]) for name, job in done.items()}
    plain = got["plain"][0]

    # Image to image: at low strength the init picture governs the result, at full strength the seed does
    # (the tiny random VAE does not round-trip pictures, so compare with the seed's own picture).
    assert mean_difference(got["img2img_full"][0], plain) < mean_difference(got["img2img_low"][0], plain)
    assert got["img2img_low"][1]["Denoising strength"] == "0.25"
    assert done["img2img_low"]["parameters"]["has_init_image"] is True
    # Inpainting: far from the mask (box 16..48, blur 2) every pixel is the original's.
    inpainted = got["inpaint"][0]
    for xy in ((0, 0), (5, 60), (63, 63), (60, 8), (10, 10)):
        assert inpainted.getpixel(xy) == init.getpixel(xy), xy
    assert inpainted.getpixel((32, 32)) != init.getpixel((32, 32)) and got["inpaint"][1]["Mask blur"] == "2"
    # Hires fix doubles the size.
    assert got["hires"][0].size == (128, 128) and got["hires"][1]["Hires upscale"] == "2"
    # Prompt weights: (x:1.0) draws exactly what x draws; (x:1.5) differs.
    assert list(got["weight_one"][0].getdata()) == list(plain.getdata())
    assert list(got["weighted"][0].getdata()) != list(plain.getdata())
    # LoRAs: both recorded, and they change the picture.
    prompt_line = got["loras"][1]["Prompt"]
    assert "<lora:" in prompt_line and "Lora hashes" in got["loras"][1]
    assert list(got["loras"][0].getdata()) != list(plain.getdata())
    assert done["loras"]["parameters"]["loras"] == [{"name": "retro-style", "scale": 0.8},
                                                    {"name": "sketch-style", "scale": -0.5}]
    # Variations: strength 0 is the seed's picture; 0.5 differs and is recorded.
    assert list(got["variation_0"][0].getdata()) == list(plain.getdata())
    assert list(got["variation"][0].getdata()) != list(plain.getdata())
    assert got["variation"][1]["Variation seed"] == "5" and got["variation"][1]["Variation seed strength"] == "0.5"


def test_remix_by_init_image_id_and_live_preview(stack):
    api, base, worker = stack
    first = finish(api, base, submit(api, base), worker)
    source_id = first["images"][0]["id"]
    source, _ = picture(api, first["images"][0])

    seen = {"previews": [], "lines": set()}

    def watch(job):
        progress = job["progress"]
        if job["status"] == "running" and progress["image"]:
            seen["lines"].add((progress["image"], progress["images"], progress["image_steps"]))
            assert progress["eta_seconds"] is None or progress["eta_seconds"] >= 0
        if job["preview_url"] and job["preview_url"] not in seen["previews"]:
            preview = api.get(job["preview_url"], timeout=60)
            if preview.status_code == 200:  # the job may have finished in between (then: 404)
                assert preview.headers["Content-Type"] == "image/png"
                assert preview.headers["Cache-Control"] == "no-store"
                Image.open(io.BytesIO(preview.content)).load()
                seen["previews"].append(job["preview_url"])

    # 256 px and 12 steps: slow enough on one CPU thread to watch the preview change.
    remix = submit(api, base, init_image_id=source_id, strength=1.0, steps=12, width=256, height=256, num_images=2)
    assert remix["parameters"]["init_image_id"] == source_id
    remix = finish(api, base, remix, worker, on_poll=watch)
    assert len(seen["previews"]) >= 2, seen
    assert (1, 2, 12) in seen["lines"] and (2, 2, 12) in seen["lines"], seen["lines"]
    assert remix["preview_url"] is None and remix["progress"]["percent"] == 100
    result, info = picture(api, remix["images"][0])
    assert result.size == (256, 256) and info["Denoising strength"] == "1"
    # Without the token the preview (like the files) is not served.
    assert requests.get(seen["previews"][0], allow_redirects=False, timeout=30).status_code in (302, 404)
