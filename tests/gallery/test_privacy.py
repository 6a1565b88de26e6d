"""A private picture is absent, for everyone but its owner (and staff with the view permission), from every
place a picture can show up: each (place, viewer) pair is its own test, so a failure names the leak. And
unpublishing a picture, by its owner any way or by a moderator through a report, removes it from every public
place at once.

Each place answers with the names ("pub", "priv") of alice's two pictures it shows, found by their ids
anywhere in the page, JSON or zip, so a leak through a link or a file URL counts as much as a card."""
import io
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from gallery.models import Collection, Like, Report
from tests.gallery.conftest import ids_in

PUB, BOTH, NONE = {"pub"}, {"pub", "priv"}, set()


@pytest.fixture
def world(alice, bob, picture):
    """alice: a published and a private lantern picture, both in her public board; bob collected and liked the
    published one into his own public board; alice liked both of hers."""
    pub = picture(alice, "retro anime style, a girl holding paper lanterns", public=True)
    priv = picture(alice, "retro anime style, a girl hiding a lantern, secret")
    board = Collection.objects.create(owner=alice, name="Lantern board", is_public=True)
    board.add([pub, priv])
    bobs_board = Collection.objects.create(owner=bob, name="Found on Explore", is_public=True)
    bobs_board.add([pub])
    for user, image in ((bob, pub), (alice, pub), (alice, priv)):
        Like.set(user, image, True)
    return SimpleNamespace(pub=pub, priv=priv, board=board, bobs_board=bobs_board,
                           pictures={"pub": pub, "priv": priv})


def named(w, ids) -> set:
    return {name for name, image in w.pictures.items() if str(image.pk) in ids}


def page(url):
    """A page or a GET API answer: the pictures whose id appears anywhere in it."""
    return lambda c, w: named(w, ids_in(c.get(url(w))))


def answering(url):
    """A per-picture URL: the pictures it answers 200 for (404, or a sign-in redirect, otherwise)."""
    return lambda c, w: {name for name, image in w.pictures.items() if c.get(url(image)).status_code == 200}


def bulk_zip(c, w):
    """POST both ids for a zip: the pictures whose exact PNG bytes are in it."""
    response = c.post(reverse("gallery-bulk"), {"action": "download", "ids": [str(w.pub.pk), str(w.priv.pk)]})
    if response.status_code != 200:
        return set()
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        members = {archive.read(name) for name in archive.namelist()}
    return {name for name, image in w.pictures.items() if Path(image.file.path).read_bytes() in members}


# place: (what it shows a viewer, {viewer: the pictures that viewer must see there}). Explore, profiles, model
# pages and ?public=true list published pictures only, for their owner and staff too.
SURFACES = {
    "home": (page(lambda w: "/"), {"anon": PUB}),
    "explore": (page(lambda w: "/explore/"), {"anon": PUB, "bob": PUB, "alice": PUB, "staff": PUB}),
    "explore-search": (page(lambda w: "/explore/?q=lanterns"), {"anon": PUB, "bob": PUB, "alice": PUB,
                                                                 "staff": PUB}),
    "profile": (page(lambda w: "/u/alice/"), {"anon": PUB, "bob": PUB, "alice": PUB, "staff": PUB}),
    "model-page": (page(lambda w: "/models/retro-v1/"), {"anon": PUB, "bob": PUB, "alice": PUB, "staff": PUB}),
    "owners-public-collection": (page(lambda w: w.board.get_absolute_url()), {"anon": PUB, "bob": PUB,
                                                                             "alice": BOTH, "staff": BOTH}),
    "others-public-collection": (page(lambda w: w.bobs_board.get_absolute_url()), {"anon": PUB, "bob": PUB}),
    "gallery-search": (page(lambda w: "/gallery/?q=lantern"), {"bob": NONE, "alice": BOTH}),
    "liked-tab": (page(lambda w: "/gallery/?tab=liked"), {"bob": PUB, "alice": BOTH}),
    "image-page": (answering(lambda i: reverse("image-detail", args=[i.pk])), {"anon": PUB, "bob": PUB,
                                                                               "alice": BOTH, "staff": BOTH}),
    "media-file": (answering(lambda i: reverse("image-file", args=[i.pk])), {"anon": PUB, "bob": PUB,
                                                                             "alice": BOTH, "staff": BOTH}),
    "bulk-zip": (bulk_zip, {"bob": PUB, "alice": BOTH, "staff": BOTH}),
    "api-public-list": (page(lambda w: "/api/images/?public=true"), {"bob": PUB, "alice": PUB, "staff": PUB}),
    "api-public-search": (page(lambda w: "/api/images/?public=true&search=lanterns"), {"bob": PUB, "alice": PUB,
                                                                                        "staff": PUB}),
    "api-own-search": (page(lambda w: "/api/images/?search=lantern"), {"bob": NONE, "alice": BOTH}),
    "api-user-pictures": (page(lambda w: "/api/users/alice/images/"), {"bob": PUB, "alice": BOTH, "staff": BOTH}),
    "api-collection-pictures": (page(lambda w: f"/api/collections/{w.board.pk}/images/"),
                                {"bob": PUB, "alice": BOTH, "staff": BOTH}),
    "api-image": (answering(lambda i: f"/api/images/{i.pk}/"), {"bob": PUB, "alice": BOTH, "staff": BOTH}),
}
CASES = [pytest.param(place, viewer, expected, id=f"{place}-{viewer}")
         for place, (_, expect) in SURFACES.items() for viewer, expected in expect.items()]


def client_as(request, viewer) -> APIClient:
    client = APIClient()  # a Django test client too: pages, files and the API with the session
    if viewer != "anon":
        client.force_login(request.getfixturevalue(viewer))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("place, viewer, expected", CASES)
def test_each_place_shows_a_private_picture_only_to_its_owner_and_staff(request, world, place, viewer, expected):
    fetch, _ = SURFACES[place]
    assert fetch(client_as(request, viewer), world) == expected


@pytest.mark.django_db
def test_collection_counts_count_only_what_the_viewer_may_see(request, world):
    alice, bob, anon = (client_as(request, viewer) for viewer in ("alice", "bob", "anon"))
    url = world.board.get_absolute_url()
    assert [c.get(f"/api/collections/{world.board.pk}/").json()["image_count"] for c in (bob, alice)] == [1, 2]
    assert 'Lantern board</a> <span class="muted">1</span>' in anon.get("/u/alice/").content.decode()
    assert "· 1 picture</p>" in anon.get(url).content.decode()
    assert "· 2 pictures</p>" in alice.get(url).content.decode()


def unpublish_in_bulk(request, w):
    return client_as(request, "alice").post(reverse("gallery-bulk"), {"action": "unpublish", "ids": [str(w.pub.pk)]})


def unpublish_on_its_page(request, w):
    return client_as(request, "alice").post(reverse("image-publish", args=[w.pub.pk]), {"public": "0"})


def unpublish_through_the_api(request, w):
    return client_as(request, "alice").patch(f"/api/images/{w.pub.pk}/", {"is_public": False}, format="json")


def moderator_unpublishes_a_report(request, w):
    report = Report.objects.create(image=w.pub, reporter=request.getfixturevalue("bob"), reason="spam")
    moderator = request.getfixturevalue("django_user_model").objects.create_superuser("root", password="root-1234")
    client = APIClient()
    client.force_login(moderator)
    response = client.post("/admin/gallery/report/", {"action": "unpublish", "_selected_action": [report.pk]})
    report.refresh_from_db()
    assert report.resolved_by == moderator
    return response


@pytest.mark.django_db
@pytest.mark.parametrize("unpublish", [unpublish_in_bulk, unpublish_on_its_page, unpublish_through_the_api,
                                       moderator_unpublishes_a_report], ids=lambda f: f.__name__)
def test_unpublishing_removes_a_picture_from_every_public_place_at_once(request, world, unpublish):
    """Every (place, viewer) where the published picture showed to someone other than its owner: after one
    unpublish, it shows in none of them; the owner still has it in her gallery."""
    places = [(place, viewer) for place, (_, expect) in SURFACES.items() for viewer, expected in expect.items()
              if viewer in ("anon", "bob") and "pub" in expected]
    clients = {viewer: client_as(request, viewer) for viewer in ("anon", "bob")}
    before = [(place, viewer) for place, viewer in places if "pub" in SURFACES[place][0](clients[viewer], world)]
    assert before == places
    assert unpublish(request, world).status_code in (200, 302)
    world.pub.refresh_from_db()
    assert world.pub.is_public is False
    leaks = [f"{place}-{viewer}" for place, viewer in places if "pub" in SURFACES[place][0](clients[viewer], world)]
    assert leaks == []
    assert named(world, ids_in(client_as(request, "alice").get("/gallery/"))) == BOTH
