"""A page costs the same number of SQL queries with 2 pictures as with 30 (likes, tags and collections on each):
no query per card, per tag or per collection (issue 17's "no N+1"). Each page is asked for twice, at 2 and at 30,
and the second answer may not cost a query more than the first."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from gallery.models import Collection, ImageTag, Like
from tests.gallery.conftest import card_ids

SMALL, LARGE = 2, 30


@pytest.fixture
def grow(alice, bob, carol, picture):
    """grow(n): alice publishes pictures until she has n, each tagged, liked by bob and carol, in her public
    board and in a collection of its own; bob and carol each get as many collections too."""
    board = Collection.objects.create(owner=alice, name="Board", is_public=True)
    made = []

    def to(n):
        while len(made) < n:
            k = len(made)
            image = picture(alice, f"retro anime style, girl number {k} with a red hat", public=True)
            ImageTag.set_tags(image, ["red-hat", f"pose-{k % 3}"])
            for fan in (bob, carol):
                Like.set(fan, image, True)
                Collection.objects.create(owner=fan, name=f"{fan.username} {k}", is_public=k % 2 == 0).add([image])
            Collection.objects.create(owner=alice, name=f"Alone {k}", is_public=True).add([image])
            board.add([image])
            made.append(image)
        return board

    return to


def logged_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


# (url, who looks, how many pictures or collections it lists at SMALL and at LARGE: a page of the API is 20)
PAGES = {
    "explore": ("/explore/?per_page=48", "bob", (SMALL, LARGE)),
    "explore-signed-out": ("/explore/?per_page=48", None, (SMALL, LARGE)),
    "explore-search": ("/explore/?per_page=48&q=girls", "bob", (SMALL, LARGE)),
    "explore-by-likes": ("/explore/?per_page=48&sort=likes&tag=red-hat", "bob", (SMALL, LARGE)),
    "gallery": ("/gallery/?per_page=48", "alice", (SMALL, LARGE)),
    "gallery-search": ("/gallery/?per_page=48&q=hat&min_clip=0.1", "alice", (SMALL, LARGE)),
    "liked-tab": ("/gallery/?per_page=48&tab=liked", "bob", (SMALL, LARGE)),
    "profile": ("/u/alice/?per_page=48", "bob", (SMALL, LARGE)),
    "collections": ("/collections/", "bob", (SMALL, LARGE)),
    "collection": ("/collections/{board}/?per_page=48", "bob", (SMALL, LARGE)),
    "model-page": ("/models/retro-v1/?per_page=48", "bob", (SMALL, LARGE)),
    "api-public": ("/api/images/?public=true", "bob", (SMALL, 20)),
    "api-public-search": ("/api/images/?public=true&search=girl&sort=likes", "bob", (SMALL, 20)),
    "api-own": ("/api/images/", "alice", (SMALL, 20)),
    "api-user-pictures": ("/api/users/alice/images/", "bob", (SMALL, 20)),
    "api-collections": ("/api/collections/", "bob", (6, 20)),  # bob's 2, alice's 1 + 2, carol's 1 public
    "api-collection-pictures": ("/api/collections/{board}/images/", "bob", (SMALL, 20)),
}


def listed(response) -> int:
    if response["Content-Type"].startswith("application/json"):
        return len(response.json()["results"])
    cards = card_ids(response)
    return len(cards) if cards else response.content.decode().count('<li><a href="/collections/')


def cost(client, url) -> tuple[int, int, list[str]]:
    """(queries, things listed, the SQL) of one GET, after a first GET that warms the session."""
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:2000]
    return len(queries), listed(response), [q["sql"] for q in queries.captured_queries]


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES)
def test_a_page_costs_the_same_queries_whatever_its_size(request, grow, name):
    url, who, expected = PAGES[name]
    client = logged_in(request.getfixturevalue(who)) if who else APIClient()
    board = grow(SMALL)
    url = url.format(board=board.pk)
    small, small_listed, _ = cost(client, url)
    grow(LARGE)
    large, large_listed, sql = cost(client, url)
    assert (small_listed, large_listed) == expected
    assert large <= small, "\n".join(sql)
