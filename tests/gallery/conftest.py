"""Gallery fixtures: users, a registered model (no weights needed: nothing is generated) and finished jobs
written straight to the database with real PNG files carrying an A1111 `parameters` chunk."""
import pytest
from django.test import Client

from tests.web.conftest import make_finished_job, png_bytes  # noqa: F401  (re-exported for the tests)


@pytest.fixture
def retro_model(db):
    from generator.models import AIModel

    return AIModel.objects.create(name="retro-v1", source="/nonexistent/retro-v1", native_size=64, is_default=True,
                                  description="Retro anime style, 1980s cel shading.")


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-pass-1234")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-pass-1234")


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol", password="carol-pass-1234")


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def alice_client(alice):
    return client_for(alice)


@pytest.fixture
def bob_client(bob):
    return client_for(bob)


@pytest.fixture
def picture(alice, retro_model):
    """make_picture(owner, prompt, public=False, **fields) -> GeneratedImage (one finished job each)."""
    from generator.models import GeneratedImage

    def make(owner=None, prompt="retro anime style, a girl with a red hat", public=False, **fields):
        _, (image,) = make_finished_job(owner or alice, retro_model, prompt=prompt, public=public)
        if fields:
            GeneratedImage.objects.filter(pk=image.pk).update(**fields)
            image.refresh_from_db()
        return image

    return make
