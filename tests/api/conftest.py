"""Fixtures for the API tests: users with tokens, a registered model, images stored in real storage.

`tiny_assets` (tests/conftest.py) is the engine's tiny offline SD 1.x pipeline and tiny open_clip, built once per session
(a few seconds); the end-to-end test registers it as the default model and points the worker at the
CLIP folder with RETROPORTAL_CLIP_MODEL=local-dir:<dir>.
"""
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.files.base import ContentFile
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from generator.models import AIModel, GeneratedImage, GenerationJob


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    """Throttle counts live in the (process-local) cache: start every test from zero."""
    cache.clear()
    yield
    cache.clear()


def make_user(username):
    return get_user_model().objects.create_user(username, password="pw-" + username + "-123!")


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.get_or_create(user=user)[0].key)
    return client


@pytest.fixture
def alice(db):
    return make_user("alice")


@pytest.fixture
def bob(db):
    return make_user("bob")


@pytest.fixture
def alice_api(alice):
    return token_client(alice)


@pytest.fixture
def bob_api(bob):
    return token_client(bob)


@pytest.fixture
def registered_model(db):
    return AIModel.objects.create(name="tiny-sd1", source="/nonexistent/tiny-sd1", architecture="sd1", is_default=True)


def png_bytes(text="retro anime style\nSteps: 2, Seed: 7") -> bytes:
    info = PngInfo()
    info.add_text("parameters", text)
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 90)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def make_job(user, model, status=GenerationJob.Status.DONE, prompt="retro anime style, a girl", **extra):
    fields = dict(
        user=user, model=model, prompt=prompt, negative_prompt="blurry", seed=7, steps=2, guidance_scale=7.0,
        width=64, height=64, num_images=1, scheduler="euler", status=status,
    )
    fields.update(extra)
    return GenerationJob.objects.create(**fields)


def make_image(job, index=0, is_public=False, clip_score=0.25):
    image = GeneratedImage(
        job=job, owner=job.user, index=index, seed=job.seed + index, width=job.width, height=job.height,
        parameters=f"{job.prompt}\nNegative prompt: {job.negative_prompt}\nSteps: 2, Seed: {job.seed + index}",
        clip_score=clip_score, clip_model="tiny", is_public=is_public,
    )
    image.file.save(f"{job.pk}-{index}.png", ContentFile(png_bytes(image.parameters)), save=False)
    image.save()
    return image


@pytest.fixture
def alice_image(alice, registered_model):
    """A finished job of alice's with one private image."""
    return make_image(make_job(alice, registered_model))

