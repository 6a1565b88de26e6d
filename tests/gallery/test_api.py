"""Gallery API (issue 17, item 9) on real PostgreSQL: search/sort, likes, collections, users' pictures, and
isolation: another user's private picture or collection does not exist for you (404)."""
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from gallery.models import Collection, Like


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def ids(response):
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.django_db
def test_search_finds_stems_and_never_anothers_private_picture(alice, bob, picture):
    running = picture(bob, "retro anime style, a boy running on a beach", public=True)
    secret = picture(alice, "retro anime style, a girl who runs at night")
    assert ids(api(bob).get("/api/images/", {"public": "true", "search": "run"})) == {str(running.pk)}
    assert ids(api(bob).get("/api/images/", {"search": "run"})) == {str(running.pk)}  # bob's own
    assert str(secret.pk) in ids(api(alice).get("/api/images/", {"search": "running"}))


@pytest.mark.django_db
def test_sort_likes_orders_by_like_count(alice, bob, picture):
    first, second = picture(bob, public=True), picture(bob, public=True)
    Like.set(alice, second, True)
    assert [r["id"] for r in api(alice).get("/api/images/", {"public": "true", "sort": "likes"}).json()["results"]][
        0] == str(second.pk)


@pytest.mark.django_db
def test_like_is_idempotent_and_private_pictures_are_404(alice, bob, picture):
    public, private = picture(bob, public=True), picture(bob)
    url = f"/api/images/{public.pk}/like/"
    for _ in range(2):
        assert api(alice).post(url, {"liked": True}, format="json").json()["like_count"] == 1
    assert api(alice).post(url, {}, format="json").json() == {"image": str(public.pk), "liked": False,
                                                             "like_count": 0}
    assert api(alice).post(f"/api/images/{private.pk}/like/", {}, format="json").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_likes_make_one_row(alice, bob, picture):
    image = picture(bob, public=True)
    barrier, codes = threading.Barrier(2), []

    def like():
        try:
            barrier.wait()
            codes.append(api(alice).post(f"/api/images/{image.pk}/like/", {"liked": True}, format="json")
                         .status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=like) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    image.refresh_from_db()
    assert codes == [200, 200] and Like.objects.filter(image=image).count() == 1 and image.like_count == 1


@pytest.mark.django_db
def test_collections_crud_add_remove_and_isolation(alice, bob, picture):
    mine, hidden = picture(alice, public=True), picture(bob)
    made = api(alice).post("/api/collections/", {"name": "Favourites"}, format="json")
    assert made.status_code == 201 and made.json()["is_public"] is False
    url = f"/api/collections/{made.json()['id']}/"
    assert api(alice).post("/api/collections/", {"name": "Favourites"}, format="json").status_code == 409
    assert api(alice).post(url + "images/", {"image": str(mine.pk)}, format="json").json()["image_count"] == 1
    refused = api(alice).post(url + "images/", {"image": str(hidden.pk)}, format="json")
    assert refused.status_code == 400 and "image" in refused.json()
    assert ids(api(alice).get(url + "images/")) == {str(mine.pk)}
    for method in ("get", "patch", "delete"):
        assert getattr(api(bob), method)(url, {}, format="json").status_code == 404  # private: not there
    assert api(bob).get(url + "images/").status_code == 404
    assert api(bob).delete(url + f"images/{mine.pk}/").status_code == 404
    assert api(alice).patch(url, {"is_public": True}, format="json").json()["is_public"] is True
    assert api(bob).get(url).status_code == 200 and api(bob).delete(url).status_code == 403
    assert api(alice).delete(url + f"images/{mine.pk}/").status_code == 204
    assert api(alice).delete(url).status_code == 204 and not Collection.objects.exists()


@pytest.mark.django_db
def test_user_images_are_their_visible_pictures(alice, bob, picture):
    shown, private = picture(bob, public=True), picture(bob)
    assert ids(api(alice).get("/api/users/bob/images/")) == {str(shown.pk)}
    assert ids(api(bob).get("/api/users/bob/images/")) == {str(shown.pk), str(private.pk)}
    assert api(alice).get("/api/users/nobody/images/").status_code == 404
    assert api().get("/api/users/bob/images/").status_code == 401
