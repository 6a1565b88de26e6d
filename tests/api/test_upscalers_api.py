"""Registered upscalers in the API (in-process, real PostgreSQL; jobs recorded, never queued): a registered name is
a valid `hires_upscaler`, an unknown one is a one-line 400 naming the valid ones, GET /api/models/ lists upscalers
(kind `upscaler`, with their scale), and an upscaler is never a model to draw with. The worker running one: tests/web/test_upscalers_web.py."""
import pytest

from generator.models import AIModel, GenerationJob
from tests.api.test_creative_api import one_line_error, post

pytestmark = pytest.mark.django_db


@pytest.fixture
def upscaler_entry(tiny_upscaler_path):
    return AIModel.objects.create(name="tiny-esrgan", source=str(tiny_upscaler_path), kind="upscaler",
                                  architecture="ESRGAN", upscale_factor=2)


def test_a_registered_upscaler_is_accepted_and_echoed(alice_api, registered_model, upscaler_entry):
    response = post(alice_api, width=64, height=64, hires_scale=2, hires_upscaler="tiny-esrgan")
    assert response.status_code == 202, response.content
    assert response.json()["parameters"]["hires_upscaler"] == "tiny-esrgan"
    assert GenerationJob.objects.get(pk=response.json()["id"]).hires_upscaler == "tiny-esrgan"


def test_an_unknown_or_inactive_upscaler_is_one_line_naming_the_valid_ones(alice_api, registered_model,
                                                                          upscaler_entry):
    AIModel.objects.create(name="retired-esrgan", source="/nonexistent.safetensors", kind="upscaler", is_active=False)
    for name in ("4x-nope", "retired-esrgan"):
        message = one_line_error(post(alice_api, width=64, height=64, hires_scale=2, hires_upscaler=name),
                                 "hires_upscaler")
        assert message == f"unknown upscaler {name!r}; valid: Lanczos, Latent, tiny-esrgan"
    assert "hires_upscaler" in post(alice_api, hires_upscaler=7).json()  # a string, not a number
    assert GenerationJob.objects.count() == 0


def test_an_upscaler_is_no_model_to_draw_with(alice_api, registered_model, upscaler_entry):
    message = one_line_error(post(alice_api, model="tiny-esrgan"), "model")
    assert "tiny-esrgan" in message and "tiny-sd1" in message
    assert GenerationJob.objects.count() == 0


def test_the_models_list_shows_upscalers_with_their_scale_and_the_schema_points_there(alice_api, registered_model,
                                                                                      upscaler_entry):
    listed = {m["name"]: (m["kind"], m["upscale_factor"]) for m in alice_api.get("/api/models/").json()["results"]}
    assert listed == {"tiny-sd1": ("base", 0), "tiny-esrgan": ("upscaler", 2)}
    schema = alice_api.get("/api/schema/?format=json").json()["components"]["schemas"]
    assert "kind `upscaler`" in schema["GenerationCreate"]["properties"]["hires_upscaler"]["description"]
    assert "upscaler" in schema["KindEnum"]["enum"]
