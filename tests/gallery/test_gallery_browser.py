"""The gallery in headless Chromium on the live server (PostgreSQL): a signed-out visitor searches Explore from
the home page, sees the matching published picture and not a private one, opens its creator's profile; a signed-in
member likes a picture (the count goes up), puts it in a new collection, selects pictures in /gallery/ and
downloads them as a zip holding exactly those PNGs with their metadata. Pictures are seeded directly (mini-world
portraits with an A1111 `parameters` chunk): nothing is generated, no worker is needed.
Screenshots go to test-artifacts/, and to docs/screenshots/ with RETROPORTAL_DOCS_SCREENSHOTS=1."""
import io
import re
import zipfile

import pytest
from PIL import Image

from gallery.models import Collection, Like
from tests.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

UMBRELLA = "retro anime style, a girl with pink twin-tail hair holding an umbrella, red shirt, on a beach"
SECRET = "a secret sketch: an old man holding an umbrella, in a market"


def portrait(image, seed, **attrs):
    """Give a seeded picture a real mini-world portrait (64 px) carrying its infotext, as the worker writes it."""
    from generator.engine.infotext import encode_png
    from training.miniworld import Attributes, render

    style = attrs.pop("style", "retro")
    with open(image.file.path, "wb") as handle:
        handle.write(encode_png(render(Attributes(**attrs), style, size=64, seed=seed), image.parameters))
    return image


@pytest.fixture
def pictures(alice, bob, picture):
    made = {
        "umbrella": portrait(picture(prompt=UMBRELLA, public=True), 1, hair_color="pink", hair_style="twintails",
                             accessory="umbrella", background="beach"),
        "secret": portrait(picture(prompt=SECRET, public=False), 2, gender="boy", age="old", accessory="umbrella",
                           background="market"),
    }
    for i, (prompt, attrs) in enumerate([
        ("retro anime style, a boy with blue short hair and glasses, green shirt, in a classroom",
         dict(gender="boy", hair_color="blue", glasses=True, clothing="green", background="classroom")),
        ("a young woman with long blonde hair wearing a straw hat, yellow shirt, in a flower garden",
         dict(hair_color="blonde", hair_style="long", accessory="hat", clothing="yellow", style="modern")),
        ("retro anime style, an old woman with red ponytail hair, purple shirt, in a city at night",
         dict(age="old", hair_color="red", hair_style="ponytail", clothing="purple", background="city_night")),
    ]):
        made[f"alice{i}"] = portrait(picture(prompt=prompt, public=True), 10 + i, **attrs)
    for i, (prompt, attrs) in enumerate([
        ("retro anime style, a little boy with black short hair holding an onigiri, in a village",
         dict(gender="boy", accessory="onigiri", background="village")),
        ("a schoolgirl with brown twintail hair and glasses wearing a ribbon, blue shirt, at school",
         dict(hair_color="brown", hair_style="twintails", glasses=True, accessory="ribbon", clothing="blue",
              background="classroom", style="modern")),
        ("retro anime style, a grandfather with blonde short hair, red shirt, at a street market",
         dict(gender="boy", age="old", hair_color="blonde", background="market")),
    ]):
        made[f"bob{i}"] = portrait(picture(owner=bob, prompt=prompt, public=i == 0), 20 + i, **attrs)
    return made


def wait_for_pictures(page):
    page.wait_for_function("() => [...document.querySelectorAll('.card-pic img')].every(i => i.naturalWidth > 0)")


def test_explore_profile_like_collect_and_bulk_download(page, live_server, alice, bob, pictures):
    page.set_viewport_size({"width": 1280, "height": 900})
    url = live_server.url
    umbrella = pictures["umbrella"]

    # Signed out: the home page searches Explore (a stem: "umbrellas" finds "umbrella").
    page.goto(f"{url}/")
    page.fill("#f-q", "umbrellas")
    page.click(".filter-q button:has-text('Search')")
    page.wait_for_url(re.compile(r"/explore/\?q=umbrellas"))
    cards = page.locator(".card-pic")
    assert cards.count() == 1 and cards.first.get_attribute("data-id") == str(umbrella.pk)
    assert "secret" not in page.content()  # alice's private umbrella picture is not there
    assert "{#" not in page.inner_text("main") and "{%" not in page.inner_text("main")  # no template leaking
    assert page.inner_text("#result-count") == "1 picture matches \u201cumbrellas\u201d"
    assert page.input_value("select[name=sort]") == ""  # ranked by relevance, not the home page's "Newest"
    assert page.locator("select[name=sort] option:checked").inner_text() == "Best match (with a search)"
    assert cards.first.locator(".like-count").inner_text() == "0"
    wait_for_pictures(page)
    shot(page, "explore-search", docs=True)

    # The creator's profile: her published pictures (4), not the private one.
    cards.first.locator("a.owner-link").click()
    page.wait_for_url(f"{url}/u/alice/")
    assert page.locator("#pictures-count").inner_text() == "4 public pictures"
    assert page.locator(".card-pic").count() == 4 and "secret" not in page.content()
    wait_for_pictures(page)
    shot(page, "profile", docs=True)

    # Signed in as bob: like alice's picture on Explore; the count goes up without a reload, and stays.
    page.goto(f"{url}/accounts/login/?next=/explore/%3Fq%3Dumbrella")
    page.fill("#id_username", "bob")
    page.fill("#id_password", "bob-pass-1234")
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/explore/\?q=umbrella$"))
    like = page.locator(f'.card-pic[data-id="{umbrella.pk}"] .like-btn')
    like.click()
    page.wait_for_function(f"""() => document.querySelector('.card-pic[data-id="{umbrella.pk}"] .like-count')
                                     .textContent === '1'""")
    assert like.get_attribute("aria-pressed") == "true"
    assert Like.objects.filter(user=bob, image=umbrella).count() == 1
    page.reload()
    assert like.inner_text().strip().endswith("1") and "liked" in like.get_attribute("class")

    # Its page (through the lightbox): create a collection with it in.
    page.locator(f'.card-pic[data-id="{umbrella.pk}"] a.lb-open').click()
    page.click("#lb-page")
    page.wait_for_url(f"{url}/images/{umbrella.pk}/")
    page.fill("#new-collection-inline input[name=name]", "Beach days")
    page.click("#new-collection-inline button")
    page.wait_for_selector(".in-collection:has-text('Beach days')")
    assert list(Collection.objects.get(owner=bob, name="Beach days").images.all()) == [umbrella]

    # /gallery/: select two of bob's three pictures and download them as one zip.
    page.click("nav >> text=Gallery")
    page.wait_for_url(f"{url}/gallery/")
    chosen = [pictures["bob0"], pictures["bob2"]]
    for image in chosen:
        page.check(f'.pick-box[value="{image.pk}"]')
    assert page.inner_text("#bulk-count") == "2 selected"
    assert page.locator(".card-pic.selected").count() == 2
    wait_for_pictures(page)
    shot(page, "gallery-bulk", docs=True)
    with page.expect_download() as download_info:
        page.click("#bulk-download")
    download = download_info.value
    assert download.suggested_filename == "retroportal-2-pictures.zip"
    with zipfile.ZipFile(download.path()) as archive:
        names = sorted(archive.namelist())
        assert names == sorted(f"retroportal-{i.seed}-{str(i.pk)[:8]}.png" for i in chosen)
        by_name = {f"retroportal-{i.seed}-{str(i.pk)[:8]}.png": i for i in chosen}
        for name in names:
            data = archive.read(name)
            with by_name[name].file.open("rb") as handle:
                assert data == handle.read()  # the stored PNG, unchanged
            png = Image.open(io.BytesIO(data))
            assert png.size == (64, 64) and png.text["parameters"] == by_name[name].parameters
