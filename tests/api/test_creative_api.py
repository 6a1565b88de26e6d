"""The creative controls in the API, in-process (APIClient, real PostgreSQL; submitted jobs are recorded but
never queued): pictures as base64 or data URLs, remix by init_image_id (own or public; a foreign private one
is 404), one-line 400s naming the field for bad pictures and masks, every bad field at once, LoRA checks,
the job echo, and the OpenAPI schema documenting every new field. The worker path: test_creative_end_to_end.py.
"""
import uuid

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from generator.models import AIModel, GenerationJob
from tests import pictures as pics
from tests.api.conftest import make_image, make_job

pytestmark = pytest.mark.django_db

PNG = pics.encode(pics.gradient())
MASK = pics.encode(pics.mask())


def post(client, **body):
    return client.post("/api/generations/", {"prompt": "retro anime style, a girl", "steps": 2, **body}, format="json")


def one_line_error(response, field):
    assert response.status_code == 400, response.content
    messages = response.json()[field]
    assert len(messages) == 1 and "\n" not in messages[0] and messages[0].strip(), messages
    return messages[0]


def stored_picture(field_file) -> Image.Image:
    with field_file.open("rb") as handle:
        picture = Image.open(handle)
        picture.load()
    return picture


@pytest.mark.parametrize("encoding", ["base64", "data_url_png", "data_url_jpeg", "data_url_webp"])
def test_init_image_by_base64_or_data_url_is_stored_under_a_generated_name(alice_api, registered_model, encoding):
    fmt = {"base64": "PNG", "data_url_png": "PNG", "data_url_jpeg": "JPEG", "data_url_webp": "WEBP"}[encoding]
    data = pics.encode(pics.gradient(), fmt)
    value = pics.b64(data) if encoding == "base64" else pics.data_url(data, f"image/{fmt.lower()}")
    response = post(alice_api, init_image=value, strength=0.6, width=64, height=64)
    assert response.status_code == 202, response.content
    job = GenerationJob.objects.get(pk=response.json()["id"])
    assert job.strength == 0.6 and job.init_image_source is None and not job.mask_image
    name = job.init_image.name
    assert name.startswith("inputs/") and name.endswith(".png") and len(name.rsplit("/", 1)[1]) == 36
    assert default_storage.exists(name)
    picture = stored_picture(job.init_image)
    assert picture.size == (64, 64) and picture.mode == "RGB"
    if fmt == "PNG":  # lossless: the very pixels sent
        assert list(picture.getdata()) == list(pics.gradient().getdata())
    echo = response.json()["parameters"]
    assert echo["has_init_image"] is True and echo["has_mask_image"] is False and echo["init_image_id"] is None


def test_inpainting_stores_the_mask_as_a_grey_picture(alice_api, registered_model):
    response = post(alice_api, init_image=pics.b64(PNG), mask_image=pics.data_url(MASK), mask_blur=6, strength=1.0)
    assert response.status_code == 202, response.content
    job = GenerationJob.objects.get(pk=response.json()["id"])
    mask = stored_picture(job.mask_image)
    assert mask.mode == "L" and mask.getpixel((32, 32)) == 255 and mask.getpixel((2, 2)) == 0
    assert job.mask_blur == 6 and response.json()["parameters"]["has_mask_image"] is True


def test_remix_by_init_image_id_copies_the_pictures_bytes(alice_api, alice, bob, registered_model):
    own = make_image(make_job(alice, registered_model))
    bobs_public = make_image(make_job(bob, registered_model), is_public=True)
    for source in (own, bobs_public):
        response = post(alice_api, init_image_id=str(source.pk), strength=0.5)
        assert response.status_code == 202, response.content
        job = GenerationJob.objects.get(pk=response.json()["id"])
        assert job.init_image_source_id == source.pk
        assert response.json()["parameters"]["init_image_id"] == str(source.pk)
        with source.file.open("rb") as handle:
            original = Image.open(handle).convert("RGB")
        assert list(stored_picture(job.init_image).getdata()) == list(original.getdata())


def test_another_users_private_image_is_404_and_records_nothing(alice_api, bob, registered_model):
    private = make_image(make_job(bob, registered_model))
    before = GenerationJob.objects.count()
    for image_id in (private.pk, uuid.uuid4()):
        response = post(alice_api, init_image_id=str(image_id))
        assert response.status_code == 404 and set(response.json()) == {"detail"}
    assert GenerationJob.objects.count() == before


@pytest.mark.parametrize("field", ["init_image", "mask_image"])
@pytest.mark.parametrize("bad", ["not base64 at all!", pics.b64(b"hello, not a picture"), "data:text/plain;base64,aGk=",
                                 pics.b64(pics.bomb_png()), pics.b64(PNG[:200])])
def test_bad_pictures_are_one_line_400s_naming_the_field(alice_api, registered_model, field, bad):
    body = {field: bad}
    if field == "mask_image":
        body["init_image"] = pics.b64(PNG)
    response = post(alice_api, **body)
    one_line_error(response, field)
    assert set(response.json()) == {field}
    assert GenerationJob.objects.count() == 0


def test_a_picture_over_the_upload_limit_is_refused(alice_api, registered_model, settings):
    settings.RETROPORTAL_LIMITS = {**settings.RETROPORTAL_LIMITS, "max_upload_bytes": 4000}
    big = pics.noise_png(64, 64)
    assert len(big) > 4000
    message = one_line_error(post(alice_api, init_image=pics.b64(big)), "init_image")
    assert "limit" in message


def test_a_mask_of_another_shape_or_without_a_picture_is_refused(alice_api, registered_model):
    wide = pics.b64(pics.encode(pics.mask(64, 32, (0, 0, 32, 32))))
    one_line_error(post(alice_api, init_image=pics.b64(PNG), mask_image=wide), "mask_image")
    one_line_error(post(alice_api, mask_image=pics.b64(MASK)), "mask_image")


def test_every_bad_field_at_once(alice_api, registered_model):
    response = post(alice_api, init_image="nope", strength=0, mask_blur=-1, hires_scale=9, hires_strength=2,
                    hires_upscaler="ESRGAN-9000", variation_strength=1.5, variation_seed=-7, translate="fr",
                    loras=[{"name": "nope", "scale": 5}], steps=0)
    assert response.status_code == 400
    body = response.json()
    assert set(body) >= {"init_image", "strength", "mask_blur", "hires_scale", "hires_strength", "hires_upscaler",
                         "variation_strength", "variation_seed", "translate", "loras", "steps"}, body


def test_init_image_and_init_image_id_together_are_refused(alice_api, alice, registered_model):
    own = make_image(make_job(alice, registered_model))
    one_line_error(post(alice_api, init_image=pics.b64(PNG), init_image_id=str(own.pk)), "init_image_id")


def test_loras_must_be_registered_and_fit_the_models_architecture(alice_api, registered_model):
    sdxl_base = AIModel.objects.create(name="xl-base", source="/nonexistent/xl", architecture="sdxl")
    AIModel.objects.create(name="xl-style", source="/nonexistent/xl.safetensors", kind="lora", parent=sdxl_base,
                           architecture="sdxl")
    AIModel.objects.create(name="retro-style", source="/nonexistent/sd1.safetensors", kind="lora",
                           parent=registered_model, architecture="sd1")
    message = one_line_error(post(alice_api, loras=[{"name": "xl-style", "scale": 0.8}]), "loras")
    assert "xl-style" in message and "sdxl" in message and "tiny-sd1" in message and "sd1" in message
    message = one_line_error(post(alice_api, loras=[{"name": "missing", "scale": 1}]), "loras")
    assert "missing" in message and "retro-style" in message
    one_line_error(post(alice_api, loras=[{"name": "retro-style", "scale": 1, "path": "/etc/passwd"}]), "loras")

    response = post(alice_api, loras=[{"name": "retro-style", "scale": 0.8}])
    assert response.status_code == 202, response.content
    assert response.json()["parameters"]["loras"] == [{"name": "retro-style", "scale": 0.8}]
    assert GenerationJob.objects.get(pk=response.json()["id"]).loras == [{"name": "retro-style", "scale": 0.8}]


def test_translation_is_refused_while_no_model_is_configured(alice_api, registered_model, settings):
    settings.RETROPORTAL_TRANSLATE_MODEL = ""
    message = one_line_error(post(alice_api, translate="id"), "translate")
    assert "RETROPORTAL_TRANSLATE_MODEL" in message
    settings.RETROPORTAL_TRANSLATE_MODEL = "/models/opus-mt-id-en"
    response = post(alice_api, translate="id", prompt="seorang gadis dengan topi merah")
    assert response.status_code == 202 and response.json()["parameters"]["translate"] == "id"


def test_the_job_echoes_hires_variation_and_progress_fields(alice_api, registered_model):
    response = post(alice_api, width=64, height=64, hires_scale=2, hires_steps=3, hires_strength=0.4,
                    variation_seed=99, variation_strength=0.2)
    assert response.status_code == 202, response.content
    body = response.json()
    echo = body["parameters"]
    assert (echo["hires_scale"], echo["hires_steps"], echo["hires_strength"], echo["hires_upscaler"]) == \
        (2.0, 3, 0.4, "Lanczos")
    assert (echo["variation_seed"], echo["variation_strength"]) == (99, 0.2)
    assert body["preview_url"] is None
    assert set(body["progress"]) == {"step", "total", "percent", "image", "images", "image_step", "image_steps",
                                     "eta_seconds"}
    assert body["progress"]["images"] == 1 and body["progress"]["eta_seconds"] is None


def test_the_schema_documents_every_new_field(alice_api):
    schema = alice_api.get("/api/schema/?format=json").json()
    request = schema["components"]["schemas"]["GenerationCreate"]["properties"]
    new = {"init_image", "init_image_id", "strength", "mask_image", "mask_blur", "hires_scale", "hires_steps",
           "hires_strength", "hires_upscaler", "loras", "variation_seed", "variation_strength", "translate"}
    assert new <= set(request)
    assert all(request[name].get("description") for name in new), [n for n in new if not request[n].get("description")]
    assert request["strength"]["maximum"] == 1 and request["strength"]["exclusiveMinimum"] is True and request["strength"]["minimum"] == 0
    assert request["init_image_id"]["format"] == "uuid"
    job = schema["components"]["schemas"]["Job"]["properties"]
    assert "preview_url" in job
    progress = schema["components"]["schemas"]["Progress"]["properties"]
    assert {"image", "images", "image_step", "image_steps", "eta_seconds"} <= set(progress)
    create = schema["paths"]["/api/generations/"]["post"]["responses"]
    assert "404" in create
