"""The creative controls on the website without a worker: the generate form (uploads, remix, LoRAs, every bad
field at once), Remix/Vary prefill, the live progress numbers in status.json, the owner-only preview, and
the token counter endpoint (counted with the model's own tokenizer, no torch in the web process)."""
import datetime
import io
import json
import subprocess
import sys

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from generator.models import AIModel, GenerationJob
from tests import pictures as pics
from tests.conftest import REPO, worker_env
from tests.web.conftest import make_finished_job

VALID = {
    "prompt": "retro anime style, a girl with a red scarf", "negative_prompt": "", "model": "tiny-sd1",
    "seed": "-1", "steps": "4", "guidance_scale": "7", "width": "64", "height": "64", "num_images": "1",
    "scheduler": "euler",
}


def upload(data: bytes, name="picture.png", mime="image/png"):
    return SimpleUploadedFile(name, data, content_type=mime)


def post(client, **changes):
    return client.post(reverse("generate"), {**VALID, **changes})


def errors(response) -> dict:
    return {name: [str(e) for e in errs] for name, errs in response.context["form"].errors.items()}


def test_the_generate_page_has_every_creative_control(alice_client, tiny_model):
    html = alice_client.get(reverse("generate")).content.decode()
    for name in ("init_image", "init_image_id", "strength", "mask_image", "mask_blur", "hires_scale", "hires_steps",
                 "hires_strength", "hires_upscaler", "loras", "variation_seed", "variation_strength", "translate"):
        assert f'name="{name}"' in html, name
    for element in ("mask-canvas", "mask-brush", "mask-eraser", "mask-size", "mask-clear", "lora-pick", "lora-add",
                    "pnginfo-drop", "prompt-tokens", "size-presets"):
        assert f'id="{element}"' in html, element
    assert 'enctype="multipart/form-data"' in html


def test_img2img_and_inpainting_by_upload(alice_client, tiny_model):
    response = post(alice_client, init_image=upload(pics.encode(pics.gradient())), strength="0.5",
                    mask_image=upload(pics.encode(pics.mask()), "mask.png"), mask_blur="3")
    assert response.status_code == 302, errors(response)
    job = GenerationJob.objects.get()
    assert job.strength == 0.5 and job.mask_blur == 3 and job.init_image and job.mask_image
    assert "picture" not in job.init_image.name and "mask" not in job.mask_image.name.rsplit("/", 1)[1]


def test_bad_uploads_and_every_bad_field_at_once(alice_client, tiny_model):
    response = post(alice_client, init_image=upload(b"GIF89a not really", "x.gif", "image/gif"),
                    strength="0", hires_scale="9", variation_strength="2", loras="[{\"name\": \"nope\"}]",
                    width="65")
    assert response.status_code == 200
    found = errors(response)
    assert set(found) >= {"init_image", "strength", "hires_scale", "variation_strength", "loras", "width"}, found
    assert all(len(messages) == 1 and "\n" not in messages[0] for messages in found.values()), found
    html = response.content.decode()
    assert 'data-field="init_image"' in html and 'data-field="loras"' in html
    assert GenerationJob.objects.count() == 0

    bomb = post(alice_client, init_image=upload(pics.bomb_png()))
    assert list(errors(bomb)) == ["init_image"]
    mask_only = post(alice_client, mask_image=upload(pics.encode(pics.mask())))
    assert list(errors(mask_only)) == ["mask_image"]


def test_remix_and_vary_prefill_the_form_and_a_foreign_private_image_is_refused(alice_client, alice, bob,
                                                                               tiny_model):
    _, (mine,) = make_finished_job(alice, tiny_model)
    _, (bobs_private,) = make_finished_job(bob, tiny_model)
    _, (bobs_public,) = make_finished_job(bob, tiny_model, public=True)
    page = alice_client.get(reverse("image-detail", args=[mine.pk])).content.decode()
    assert f'href="/generate/?remix={mine.pk}"' in page and f'href="/generate/?vary={mine.pk}"' in page

    remix = alice_client.get(f"/generate/?remix={bobs_public.pk}")
    assert remix.context["form"].initial["init_image_id"] == str(bobs_public.pk)
    assert 'id="remix-source"' in remix.content.decode()
    vary = alice_client.get(f"/generate/?vary={mine.pk}").context["form"].initial
    assert vary["seed"] == mine.seed and vary["variation_seed"] == -1 and 0 < vary["variation_strength"] < 1
    assert "init_image_id" not in alice_client.get(f"/generate/?remix={bobs_private.pk}").context["form"].initial

    response = post(alice_client, init_image_id=str(bobs_public.pk), strength="0.6")
    assert response.status_code == 302, errors(response)
    assert GenerationJob.objects.filter(user=alice).latest("created_at").init_image_source_id == bobs_public.pk
    refused = post(alice_client, init_image_id=str(bobs_private.pk))
    assert list(errors(refused)) == ["init_image"]


def test_loras_from_the_picker(alice_client, tiny_model):
    AIModel.objects.create(name="retro-style", source="/nonexistent/r.safetensors", kind="lora", parent=tiny_model,
                           architecture="sd1")
    page = alice_client.get(reverse("generate"))
    assert {"name": "retro-style", "architecture": "sd1", "description": ""} in page.context["form"].lora_models
    response = post(alice_client, loras=json.dumps([{"name": "retro-style", "scale": -0.5}]))
    assert response.status_code == 302, errors(response)
    assert GenerationJob.objects.get().loras == [{"name": "retro-style", "scale": -0.5}]


def test_status_json_and_page_show_image_step_eta_and_the_preview_to_the_owner_only(alice_client, bob_client,
                                                                                   alice, tiny_model):
    job = GenerationJob.objects.create(
        user=alice, model=tiny_model, prompt="retro anime style", seed=1, steps=10, guidance_scale=7, width=64,
        height=64, num_images=3, scheduler="euler", status=GenerationJob.Status.RUNNING,
        started_at=timezone.now() - datetime.timedelta(seconds=30), progress_step=15, progress_total=30,
        progress_image=2, progress_images=3, progress_image_step=5, progress_image_steps=10,
        preview_png=pics.encode(pics.gradient(8, 8)), preview_updated_at=timezone.now(),
    )
    status = alice_client.get(reverse("job-status", args=[job.pk])).json()
    assert status["progress"] == {"step": 15, "total": 30, "percent": 50, "image": 2, "images": 3, "image_step": 5,
                                  "image_steps": 10, "eta_seconds": 30}
    assert status["progress_line"] == "image 2 of 3 · step 5 of 10 · ETA 30 s"
    page = alice_client.get(job.get_absolute_url()).content.decode()
    assert "image 2 of 3 · step 5 of 10 · ETA 30 s" in page and page.count('class="thumb slot') == 3

    preview = alice_client.get(status["preview_url"])
    assert preview.status_code == 200 and preview["Content-Type"] == "image/png"
    assert preview["Cache-Control"] == "no-store"
    assert Image.open(io.BytesIO(preview.content)).size == (8, 8)
    assert bob_client.get(status["preview_url"]).status_code == 404
    assert bob_client.get(reverse("job-status", args=[job.pk])).status_code == 404

    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.Status.DONE)
    assert alice_client.get(reverse("job-preview", args=[job.pk])).status_code == 404
    assert alice_client.get(reverse("job-status", args=[job.pk])).json()["preview_url"] is None


def test_the_token_counter_counts_chunks_with_the_models_tokenizer(alice_client, tiny_model, tiny_assets):
    from transformers import CLIPTokenizer  # the reference: transformers' own tokenizer of the model folder

    reference = CLIPTokenizer.from_pretrained(f"{tiny_assets['model']}/tokenizer")

    def n(text):
        return len(reference(text, add_special_tokens=False).input_ids)

    url = reverse("prompt-tokens")
    short = "retro anime style, a girl with a red scarf"
    assert alice_client.get(url, {"model": "tiny-sd1", "text": short}).json()["chunks"] == [n(short)]
    weighted = alice_client.get(url, {"model": "tiny-sd1", "text": "retro anime style, (a girl:1.3) with [a red scarf]"})
    assert weighted.json()["chunks"] == [n("retro anime style, a girl with a red scarf")]
    broken = alice_client.get(url, {"model": "tiny-sd1", "text": "a girl BREAK a red scarf"}).json()
    assert broken["chunks"] == [n("a girl"), n("a red scarf")] and broken["chunk_size"] == 75
    long_text = ", ".join(["a girl with a red scarf and a hat"] * 12)
    total = n(long_text)
    assert total > 75
    counted = alice_client.get(url, {"model": "tiny-sd1", "text": long_text}).json()
    assert sum(counted["chunks"]) == total and len(counted["chunks"]) == -(-total // 75)
    assert alice_client.get(url, {"model": "nope", "text": "x"}).status_code == 404


def test_counting_tokens_loads_no_torch():
    code = (
        "import django, sys; django.setup()\n"
        "from generator import prompt_tools\n"
        "from generator.models import AIModel\n"
        "print(prompt_tools.count_tokens(AIModel(name='t', source=sys.argv[1]), 'a (girl:1.2) BREAK hat'))\n"
        "bad = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    shipped = REPO / "training/miniworld/weights/base"
    result = subprocess.run([sys.executable, "-c", code, str(shipped)], cwd=REPO, env=worker_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "'chunks': [" in result.stdout
