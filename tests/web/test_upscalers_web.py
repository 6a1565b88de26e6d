"""Upscaler models on the website: the admin registers one by loading it (scale shown; pickles only with the
opt-in; a file that is no upscaler refused on `source`), the generate form offers it as a hires_upscaler choice
and names the valid ones for an unknown name, and a job drawn with it (inline, the worker's code path) is
enlarged by it and says so in the PNG."""
import pytest
from django.urls import reverse
from PIL import Image

from generator.models import AIModel, GenerationJob
from tests.web.test_creative_web import errors, post


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="root-pass-1234"))
    return client


@pytest.fixture
def upscaler_entry(db, tiny_upscaler_path):
    return AIModel.objects.create(name="tiny-esrgan", source=str(tiny_upscaler_path), kind="upscaler",
                                  architecture="ESRGAN", upscale_factor=2)


def add_in_admin(client, **fields):
    data = {"name": "tiny-esrgan", "source": "", "kind": "upscaler", "parent": "", "lora_scale": "1.0",
            "architecture": "", "native_size": "512", "description": "", "is_active": "on", **fields}
    return client.post(reverse("admin:generator_aimodel_add"), data, follow=True)


def admin_errors(response) -> dict:
    form = response.context["adminform"].form
    return {name: [str(e) for e in errs] for name, errs in form.errors.items()}


def test_the_admin_registers_an_upscaler_by_loading_it_and_shows_its_scale(admin_client, tiny_upscaler_path):
    response = add_in_admin(admin_client, source=str(tiny_upscaler_path))
    entry = AIModel.objects.get(name="tiny-esrgan")
    assert (entry.kind, entry.architecture, entry.upscale_factor) == ("upscaler", "ESRGAN", 2)
    assert entry.source == str(tiny_upscaler_path.resolve())
    assert "Upscaler tiny-esrgan: ESRGAN ×2, offered as hires_upscaler" in response.content.decode()
    changelist = admin_client.get(reverse("admin:generator_aimodel_changelist")).content.decode()
    assert "×2" in changelist
    admin_client.post(reverse("admin:generator_aimodel_changelist"),
                      {"action": "make_default", "_selected_action": [entry.pk]})
    entry.refresh_from_db()
    assert not entry.is_default


def test_the_admin_refuses_files_that_are_no_upscaler_and_pickles_without_the_opt_in(admin_client, tmp_path,
                                                                                    settings):
    from generator.engine.tiny import save_tiny_lora, save_tiny_upscaler

    lora = save_tiny_lora("sd1", tmp_path / "style.safetensors")
    found = admin_errors(add_in_admin(admin_client, source=str(lora), is_default="on"))
    assert set(found) == {"source", "is_default"}
    assert "not an upscaler architecture spandrel knows" in found["source"][0]
    pth = save_tiny_upscaler(tmp_path / "old.pth")
    settings.RETROPORTAL_ALLOW_PICKLE = False
    assert "pickle" in admin_errors(add_in_admin(admin_client, source=str(pth)))["source"][0]
    assert not AIModel.objects.exists()
    settings.RETROPORTAL_ALLOW_PICKLE = True
    add_in_admin(admin_client, source=str(pth))
    assert AIModel.objects.get(name="tiny-esrgan").upscale_factor == 2


def test_the_form_offers_registered_upscalers_and_names_them_for_an_unknown_one(alice_client, tiny_model,
                                                                               upscaler_entry):
    html = alice_client.get(reverse("generate")).content.decode()
    assert '<option value="tiny-esrgan">tiny-esrgan (ESRGAN ×2)</option>' in html
    assert '<option value="Latent">Latent</option>' in html
    assert 'value="tiny-esrgan" selected' not in html and html.count('value="tiny-esrgan"') == 1  # not a model
    response = post(alice_client, hires_scale="2", hires_upscaler="4x-nope")
    assert errors(response) == {"hires_upscaler": ["unknown upscaler '4x-nope'; valid: Lanczos, Latent, tiny-esrgan"]}
    assert GenerationJob.objects.count() == 0


def test_a_job_is_enlarged_by_the_registered_upscaler(alice_client, tiny_model, upscaler_entry, settings,
                                                     django_capture_on_commit_callbacks):
    from generator.engine import cache

    settings.RETROPORTAL_RUN_JOBS_INLINE = True
    loads = cache.upscalers.loads
    with django_capture_on_commit_callbacks(execute=True):
        response = post(alice_client, seed="3", hires_scale="2", hires_steps="4", hires_strength="0.5",
                        hires_upscaler="tiny-esrgan")
    assert response.status_code == 302, errors(response)
    job = GenerationJob.objects.get()
    assert job.status == "done", job.error
    image = job.images.get()
    with image.file.open("rb") as handle:
        assert Image.open(handle).size == (128, 128)
    assert "Hires upscaler: tiny-esrgan" in image.parameters and "Hires upscale: 2" in image.parameters
    assert cache.upscalers.loads <= loads + 1  # loaded at most once (already cached by an earlier test: 0)
    assert "tiny-esrgan" in alice_client.get(job.get_absolute_url()).content.decode()
