"""Likes through the website's POST /images/<id>/like/ (CSRF) and the API's POST /api/images/<id>/like/: one per
user and picture whatever the number of concurrent requests (each thread its own client and database
connection), counted exactly; concurrent toggles end as the same toggles one after another would."""
import threading

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from gallery.models import Like

ROUNDS = 8  # the race between reading "not liked" and inserting is narrow: give it several chances


def csrf_client(user) -> Client:
    """A browser-like client: CSRF enforced, the token read from the cookie a page sets."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/explore/")
    return client


def web_like(client, image, **data):
    return client.post(f"/images/{image.pk}/like/", data, HTTP_ACCEPT="application/json",
                       HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)


def api_like(client, image, **data):
    return client.post(f"/api/images/{image.pk}/like/", data, format="json")


def at_once(calls) -> list:
    """Run the calls in threads released together; their answers as (status, JSON body), in call order."""
    barrier, answers = threading.Barrier(len(calls)), [None] * len(calls)

    def run(n, call):
        try:
            barrier.wait()
            response = call()
            answers[n] = (response.status_code, response.json() if response.status_code == 200 else None)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=run, args=(n, call)) for n, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def state(image):
    image.refresh_from_db(fields=["like_count"])
    return Like.objects.filter(image=image).count(), image.like_count


@pytest.fixture
def api_client(alice):
    client = APIClient()
    client.force_authenticate(alice)
    return client


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("via", ["web", "api"])
def test_concurrent_likes_by_one_user_leave_one_like(alice, bob, picture, via):
    image = picture(bob, public=True)
    clients = [csrf_client(alice) if via == "web" else APIClient() for _ in range(6)]
    for client in clients if via == "api" else ():
        client.force_authenticate(alice)
    like = web_like if via == "web" else api_like
    kwargs = {"liked": "1"} if via == "web" else {"liked": True}
    answers = at_once([lambda c=c: like(c, image, **kwargs) for c in clients])
    assert [(code, body["liked"], body["like_count"]) for code, body in answers] == [(200, True, 1)] * 6
    assert state(image) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_concurrent_likes_by_many_users_are_all_counted(django_user_model, bob, picture):
    image = picture(bob, public=True)
    fans = [django_user_model.objects.create_user(f"fan{n}") for n in range(5)]
    answers = at_once([lambda c=csrf_client(fan): web_like(c, image, liked="1") for fan in fans])
    assert [code for code, _ in answers] == [200] * 5 and answers[0][1]["liked"] is True
    assert state(image) == (5, 5)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("threads", [2, 3, 6])
def test_concurrent_toggles_end_as_serial_toggles_would(alice, bob, picture, threads):
    """n toggles of one like at once: each flips it, so the answers alternate in some order: as many
    "liked" as "unliked" answers plus the final state (1 if n is odd), the count equal to the rows."""
    image = picture(bob, public=True)
    clients = [csrf_client(alice) for _ in range(threads)]
    for start in range(ROUNDS):
        before = state(image)[0]
        answers = at_once([lambda c=c: web_like(c, image) for c in clients])
        assert [code for code, _ in answers] == [200] * threads, (start, answers)
        liked = sum(body["liked"] for _, body in answers)
        rows, count = state(image)
        assert rows == (before + threads) % 2 and count == rows, (start, answers)
        assert liked - (threads - liked) == rows - before, (start, answers)


@pytest.mark.django_db
def test_toggling_twice_returns_to_no_like(alice, bob, picture, api_client):
    image = picture(bob, public=True)
    web = csrf_client(alice)
    assert web_like(web, image).json() == {"liked": True, "like_count": 1}
    assert web_like(web, image).json() == {"liked": False, "like_count": 0}
    assert state(image) == (0, 0)
    assert api_like(api_client, image).json()["liked"] is True
    assert api_like(api_client, image).json() == {"image": str(image.pk), "liked": False, "like_count": 0}
    assert state(image) == (0, 0)
    assert web_like(web, image, liked="0").json() == {"liked": False, "like_count": 0}  # unlike: idempotent


@pytest.mark.django_db
def test_a_like_needs_a_csrf_token_a_session_and_a_visible_picture(client, alice, bob, picture):
    public, private = picture(bob, public=True), picture(bob)
    web = csrf_client(alice)
    assert web.post(f"/images/{public.pk}/like/").status_code == 403  # no token
    assert client.post(f"/images/{public.pk}/like/")["Location"].startswith("/accounts/login/")
    assert web_like(web, private).status_code == 404
    assert state(public) == (0, 0) and state(private) == (0, 0)
    page = web.post(f"/images/{public.pk}/like/", {"csrfmiddlewaretoken": web.cookies["csrftoken"].value})
    assert page.status_code == 302 and state(public) == (1, 1)  # a plain form post goes back
