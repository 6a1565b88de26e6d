"""Fixtures for the website tests: a tiny Stable Diffusion model and a tiny open_clip, built once per
session with generator.engine.tiny (no downloads), a registered default model, users, and a real
RQ worker process that scores with the tiny CLIP."""
import io

import pytest
from django.core.files.base import ContentFile

from tests.conftest import WorkerProcess, wait_for  # noqa: F401  (re-exported for the tests)

HEARTBEAT_TTL = 3  # seconds: a killed worker's job is noticed quickly in tests


@pytest.fixture
def clip_spec(settings, tiny_assets):
    settings.RETROPORTAL_CLIP_MODEL = tiny_assets["clip"]
    settings.RETROPORTAL_JOB_HEARTBEAT_TTL = HEARTBEAT_TTL
    return tiny_assets["clip"]


@pytest.fixture
def tiny_model(db, tiny_assets, clip_spec):
    from generator.models import AIModel

    return AIModel.objects.create(
        name="tiny-sd1", source=tiny_assets["model"], architecture="sd1", is_default=True,
        description="tiny random SD1 for tests",
    )


@pytest.fixture
def start_worker(transactional_db, redis_clean, tiny_assets, clip_spec):
    """Call to start a real `manage.py rqworker` (SimpleWorker) on the test DB; stopped after the test."""
    workers = []

    def start(**extra_env):
        env = {"RETROPORTAL_CLIP_MODEL": tiny_assets["clip"], "RETROPORTAL_JOB_HEARTBEAT_TTL": str(HEARTBEAT_TTL)}
        env.update(extra_env)
        worker = WorkerProcess(extra_env=env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def worker(start_worker):
    return start_worker()


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-pass-1234")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-pass-1234")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(alice, bob):
    from django.test import Client

    c = Client()
    c.force_login(bob)
    return c


def png_bytes(text="retro anime style\nSteps: 2, Seed: 1, Size: 64x64"):
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", text)
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 80, 160)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def make_finished_job(user, model, prompt="retro anime style, a girl with a hat", public=False, n=1):
    """A done job with stored images, written directly (for tests that need no worker)."""
    from generator.models import GeneratedImage, GenerationJob

    job = GenerationJob.objects.create(
        user=user, model=model, prompt=prompt, seed=1, steps=2, guidance_scale=7.0, width=64, height=64,
        num_images=n, scheduler="euler", status=GenerationJob.Status.DONE,
    )
    images = []
    for i in range(n):
        image = GeneratedImage(job=job, owner=user, index=i, seed=1 + i, width=64, height=64,
                               parameters=f"{prompt}\nSteps: 2, Seed: {1 + i}, Size: 64x64",
                               clip_score=0.25, is_public=public)
        image.file.save(f"test-{job.pk}-{i}.png", ContentFile(png_bytes()), save=False)
        image.save()
        images.append(image)
    return job, images
