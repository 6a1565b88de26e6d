"""How the card pages query PostgreSQL (benchmarks/gallery.py measures them at 100,000 pictures): the search can
use the GIN index, a page costs the same number of queries at 24 and at 96 pictures, a search page is ranked,
counted and paginated by one query over its matches, and collection counts see only visible pictures."""
import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from gallery.filters import ImageFilter
from gallery.models import Collection, ImageTag, Like
from generator.models import GeneratedImage
from tests.gallery.conftest import client_for


def plan(queryset) -> str:
    """EXPLAIN of `queryset` with sequential scans priced out: which index can serve it (on a test database of a
    few rows the planner rightly reads the table; docs/gallery-bench.md has the plans at 100,000 pictures)."""
    sql, params = queryset.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_ranked_search_can_use_the_gin_index(alice, bob, picture):
    """The stored vector against a constant tsquery, ranked and ordered as a search page is: indexable. (A
    to_tsvector(prompt) computed per row, or a query the planner cannot fold, could never use the index.)"""
    picture(prompt="a girl holding an umbrella on a beach", public=True)
    picture(owner=bob, prompt="an old man with a straw hat", public=True)
    searched = ImageFilter({"q": "umbrellas"}, queryset=GeneratedImage.objects.all()).qs
    explained = plan(searched.values("pk")[:24])  # the query of a page's ranked ids (CardPaginator)
    assert "image_search_gin" in explained and "ts_rank" in explained, explained
    for user in (AnonymousUser(), bob):  # and what Explore shows: the published match only
        explore = ImageFilter({"q": "umbrellas"}, queryset=GeneratedImage.objects.visible_to(user).public()).qs
        assert [i.job.prompt for i in explore] == ["a girl holding an umbrella on a beach"]


@pytest.fixture
def many(alice, bob, carol, picture):
    """30 public pictures of alice's (27 with "umbrella", tagged and liked) and one private one of bob's."""
    images = []
    for i in range(30):
        words = "umbrella umbrella umbrella" if i == 7 else ("umbrella" if i % 10 else "straw hat")
        images.append(picture(prompt=f"retro anime, a girl number {i} with a {words}", public=True))
    picture(owner=bob, prompt="bob's private umbrella", public=False)
    for image in images[:5]:
        ImageTag.set_tags(image, ["beach", "retro"])
        Like.set(bob, image, True)
        Like.set(carol, image, True)
    board = Collection.objects.create(owner=alice, name="Umbrellas", is_public=True)
    board.add(images)
    return images, board


def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(ctx.captured_queries)


def test_card_pages_cost_the_same_queries_at_24_and_at_96_pictures(client, alice, bob, many, django_assert_max_num_queries):
    _, board = many
    bob_client, alice_client = client_for(bob), client_for(alice)
    pages = [(client, "/explore/?"), (client, "/explore/?q=umbrella&"), (bob_client, "/explore/?q=umbrella&"),
             (client, "/?"), (client, "/u/alice/?"), (client, "/models/retro-v1/?"),
             (alice_client, "/gallery/?"), (alice_client, "/gallery/?q=umbrella&"), (bob_client, "/gallery/?tab=liked&"),
             (alice_client, "/gallery/?tag=beach&"), (client, f"/collections/{board.pk}/?")]
    for who, url in pages:
        small, big = queries(who, url + "per_page=24"), queries(who, url + "per_page=96")
        assert small == big, (url, small, big)
        with django_assert_max_num_queries(11):
            who.get(url + "per_page=96")


def test_a_search_page_is_ranked_counted_and_paginated(client, bob, many):
    images, _ = many
    first = client.get("/explore/?q=umbrella").content.decode()
    # the prompt saying "umbrella" three times ranks first; 27 matches (bob's private one is not among them)
    assert re.findall(r'data-id="([0-9a-f-]{36})"', first)[0] == str(images[7].pk)
    assert "page 1 of 2 · 27 pictures" in first and "27 pictures match &ldquo;umbrella&rdquo;" in first
    # typed into a filter bar sorted by its default, the search sends sort= empty: still ranked by relevance
    typed = client.get("/explore/?q=umbrella&model=&size=&since=&sort=").content.decode()
    assert re.findall(r'data-id="([0-9a-f-]{36})"', typed)[0] == str(images[7].pk)
    assert '<option value="" selected>Best match' in typed and '<option value="new">Newest' in typed
    assert '<option value="" selected>Newest' in client.get("/explore/").content.decode()
    second = client.get("/explore/?q=umbrella&page=2").content.decode()
    assert "page 2 of 2 · 27 pictures" in second and len(re.findall(r'<figure class="thumb', second)) == 3
    assert "private umbrella" not in first + second
    assert client.get("/explore/?q=umbrella&page=3").status_code == 404
    assert client.get("/explore/?q=umbrella&page=x").status_code == 404
    assert "No picture matches" in client.get("/explore/?q=lighthouse").content.decode()
    mine = client_for(bob).get("/gallery/?q=umbrella").content.decode()  # bob's own private picture, for him
    assert "private umbrella" in mine


def test_collection_counts_see_only_visible_pictures(alice, bob, picture):
    shown, hidden = picture(prompt="public one", public=True), picture(prompt="private one", public=False)
    board = Collection.objects.create(owner=alice, name="Mixed", is_public=True)
    board.add([shown, hidden])
    Collection.objects.create(owner=alice, name="Empty", is_public=True)
    counts = lambda user: dict(Collection.objects.visible_to(user).with_counts(user).values_list("name", "visible_count"))  # noqa: E731
    assert counts(AnonymousUser()) == counts(bob) == {"Mixed": 1, "Empty": 0}
    assert counts(alice) == {"Mixed": 2, "Empty": 0}
    assert "Mixed</a> <span class=\"muted\">1</span>" in client_for(bob).get("/u/alice/").content.decode()


def test_the_api_ranks_counts_and_pages_a_search_in_one_query_over_its_matches(bob, many):
    """/api/images/?search= pages as the gallery does (CardPaginator): no separate COUNT over the matches."""
    images, _ = many
    api = client_for(bob)
    first = api.get("/api/images/?public=true&search=umbrella").json()
    assert first["count"] == 27 and first["results"][0]["id"] == str(images[7].pk)
    with CaptureQueriesContext(connection) as ctx:
        second = api.get("/api/images/?public=true&search=umbrella&page=2").json()
    assert second["count"] == 27 and len(second["results"]) == 7
    searching = [q["sql"] for q in ctx.captured_queries if "@@" in q["sql"]]
    assert len(searching) == 2 and "OVER ()" in searching[0], searching  # ranked ids + count, then those 7
    assert not any(re.search(r"SELECT COUNT\(\*\) AS", sql) for sql in searching)
