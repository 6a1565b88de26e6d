"""Every gallery page answers for the people it is for: signed out (home, Explore, profile, model page,
a published picture and its file), the owner (gallery, Liked, collections, tags, bulk zip) and others (like, report)."""
from django.urls import reverse
from tests.gallery.conftest import client_for

def test_gallery_pages_answer_for_each_kind_of_visitor(client, alice, bob, picture, alice_client, bob_client, retro_model):
    pub = picture(prompt="a smiling girl with long red hair", public=True)
    priv = picture(prompt="secret private boy", public=False)
    for url in ["/", "/explore/", "/explore/?q=girls", "/explore/?q=girl&sort=likes&size=64x64&since=week&model=retro-v1",
                "/explore/?size=7x&since=bad&sort=zzz", f"/u/alice/", "/models/retro-v1/", f"/images/{pub.pk}/",
                f"/images/{pub.pk}/file.png"]:
        r = client.get(url)
        assert r.status_code == 200, (url, r.content[:3000])
    r = client.get("/explore/?q=girls")
    assert "smiling" in r.content.decode()
    for url in ["/gallery/", "/gallery/?tab=liked", "/collections/", f"/images/{pub.pk}/", f"/images/{priv.pk}/", "/explore/?q=secret"]:
        r = alice_client.get(url)
        assert r.status_code == 200, (url, r.content[:3000])
    assert alice_client.post("/collections/", {"name": "Faves", "image": str(pub.pk)}).status_code == 302
    assert bob_client.post(f"/images/{pub.pk}/like/").status_code == 302
    r = alice_client.get("/collections/"); assert "Faves" in r.content.decode()
    from gallery.models import Collection
    c = Collection.objects.get()
    assert alice_client.get(c.get_absolute_url()).status_code == 200
    assert bob_client.get(c.get_absolute_url()).status_code == 404
    r = alice_client.post("/gallery/bulk/", {"action": "download", "ids": [str(pub.pk), str(priv.pk)]})
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    data = b"".join(r.streaming_content)
    r = alice_client.post(f"/images/{pub.pk}/tags/", {"tags": "Red Hair, 80s , red hair"})
    r = alice_client.get("/gallery/?tag=red-hair"); assert "red-hair" in r.content.decode()
    r = bob_client.post(f"/images/{pub.pk}/report/", {"reason": "spam"}); assert r.status_code == 302


def test_a_malformed_id_in_a_bulk_selection_does_not_drop_the_rest(alice_client, picture):
    keep = picture(prompt="kept in the selection", public=False)
    other = picture(prompt="also selected", public=False)
    r = alice_client.post("/gallery/bulk/", {"action": "publish", "ids": ["not-a-uuid", str(keep.pk), "", str(other.pk)]})
    assert r.status_code == 302
    keep.refresh_from_db(), other.refresh_from_db()
    assert keep.is_public and other.is_public
    r = alice_client.post("/gallery/bulk/", {"action": "publish", "ids": ["not-a-uuid"]}, follow=True)
    assert "Select at least one picture first." in r.content.decode()
