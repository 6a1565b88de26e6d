"""Small pictures (the 64 px mini-world models) are enlarged with sharp pixels on every page that shows them;
SD-size pictures, which pages shrink, keep smooth scaling."""
import re

from django.urls import reverse

from tests.conftest import REPO
from tests.web.conftest import make_finished_job


def _img_classes(html: str, url: str) -> list[str]:
    return [m.group(1) or "" for m in re.finditer(r'<img src="%s"(?: class="([^"]*)")?' % re.escape(url), html)] + \
        [m.group(1) for m in re.finditer(r'<img class="([^"]*)" src="%s"' % re.escape(url), html)]


def test_small_pictures_are_pixelated_large_ones_are_not(alice, alice_client, tiny_model):
    job, (small,) = make_finished_job(alice, tiny_model)
    big_job, (big,) = make_finished_job(alice, tiny_model, prompt="a big one")
    big.width = big.height = 512
    big.save()
    pages = [reverse("gallery"), reverse("job-detail", args=[job.pk]), reverse("image-detail", args=[small.pk])]
    for page in pages:
        classes = _img_classes(alice_client.get(page).content.decode(), small.get_file_url())
        assert classes and all("pixel" in c.split() for c in classes), (page, classes)
    for page in (reverse("gallery"), reverse("image-detail", args=[big.pk])):
        classes = _img_classes(alice_client.get(page).content.decode(), big.get_file_url())
        assert classes and not any("pixel" in c.split() for c in classes), (page, classes)
    assert "img.pixel { image-rendering: pixelated; }" in (REPO / "static" / "css" / "site.css").read_text()
