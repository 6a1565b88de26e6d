"""Gallery fixtures: users, a registered model (no weights needed: nothing is generated) and finished jobs
written straight to the database with real PNG files carrying an A1111 `parameters` chunk."""
import re
from pathlib import Path

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
        # The PNG carries the row's own infotext, as a worker writes it (make_finished_job's is a fixed text).
        Path(image.file.path).write_bytes(png_bytes(image.parameters))
        if fields:
            GeneratedImage.objects.filter(pk=image.pk).update(**fields)
            image.refresh_from_db()
        return image

    return make


@pytest.fixture
def staff(django_user_model):
    """A moderator: staff with the view permissions that visible_to() grants everything for."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("mod", password="mod-pass-1234", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label__in=["generator", "gallery"], codename__in=["view_generatedimage",
                                                                            "view_collection"]))
    return user


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def card_ids(response) -> list[str]:
    """Picture ids of the cards on a page, in page order (each card is <figure ... data-id="...">)."""
    assert response.status_code == 200, (response.status_code, response.content[:2000])
    return re.findall(r'<figure class="thumb card-pic" data-id="([0-9a-f-]{36})"', response.content.decode())


def ids_in(response) -> set[str]:
    """Every picture-looking id anywhere in a page or JSON answer (links, file URLs, data attributes)."""
    assert response.status_code == 200, (response.status_code, response.content[:2000])
    return set(UUID.findall(response.content.decode()))
