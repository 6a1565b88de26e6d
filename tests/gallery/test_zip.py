"""The bulk download (POST /gallery/bulk/ action=download): a streamed zip of exactly the selected pictures the
requester may see, each PNG unchanged with its A1111 `parameters` chunk; others' private ids are dropped."""
import io
import zipfile
from pathlib import Path

import pytest
from django.http import StreamingHttpResponse
from PIL import Image

from tests.gallery.conftest import client_for

BULK = "/gallery/bulk/"


def download(client, *images):
    return client.post(BULK, {"action": "download", "ids": [str(i.pk) for i in images]})


def members(response) -> dict[str, bytes]:
    chunks = list(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


@pytest.fixture
def four(alice, bob, picture):
    return (picture(alice, "retro anime style, alice's published girl with a parasol", public=True),
            picture(alice, "retro anime style, alice's private boy with a sword"),
            picture(bob, "retro anime style, bob's published robot", public=True),
            picture(bob, "retro anime style, bob's private spaceship"))


@pytest.mark.django_db
def test_the_zip_holds_exactly_the_selected_pictures_the_requester_may_see(alice, four):
    mine_public, mine_private, bobs_public, bobs_private = four
    response = download(client_for(alice), mine_public, mine_private, bobs_public, bobs_private)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="retroportal-3-pictures.zip"'
    files = members(response)
    wanted = (mine_public, mine_private, bobs_public)
    assert sorted(files.values()) == sorted(Path(i.file.path).read_bytes() for i in wanted)  # PNGs unchanged
    assert len(set(files)) == 3 and all(name.endswith(".png") for name in files)
    infotexts = set()
    for data in files.values():
        with Image.open(io.BytesIO(data)) as png:
            png.load()
            assert png.format == "PNG" and png.size == (64, 64)
            infotexts.add(png.text["parameters"])
    assert infotexts == {i.parameters for i in wanted}
    assert all(i.parameters.startswith("retro anime style, ") and "\nSteps: 2, Seed: 1" in i.parameters
               for i in wanted)


@pytest.mark.django_db
def test_the_zip_is_streamed_in_pieces_with_pngs_stored_not_recompressed(alice, four):
    response = download(client_for(alice), *four[:3])
    assert isinstance(response, StreamingHttpResponse) and not response.has_header("Content-Length")
    chunks = list(response.streaming_content)
    assert len(chunks) > 3  # written while iterated, not one finished buffer
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert [info.compress_type for info in archive.infolist()] == [zipfile.ZIP_STORED] * 3


@pytest.mark.django_db
def test_only_foreign_private_ids_give_no_zip_but_a_message(bob, four):
    _, alices_private, _, bobs_private = four
    answer = client_for(bob).post(BULK, {"action": "download", "ids": [str(alices_private.pk)]}, follow=True)
    assert [code for _, code in answer.redirect_chain] == [302]
    assert answer["Content-Type"].startswith("text/html")
    assert "Select at least one picture first." in answer.content.decode()
    files = members(download(client_for(bob), alices_private, bobs_private))  # dropped, the rest still comes
    assert list(files.values()) == [Path(bobs_private.file.path).read_bytes()]


@pytest.mark.django_db
def test_signed_out_a_zip_asks_to_sign_in(client, four):
    response = download(client, four[0])
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_a_picture_missing_from_storage_is_listed_in_the_zip(alice, four):
    present, gone = four[0], four[1]
    Path(gone.file.path).unlink()
    files = members(download(client_for(alice), present, gone))
    assert [data for name, data in files.items() if name != "MISSING.txt"] == [Path(present.file.path).read_bytes()]
    assert files["MISSING.txt"].decode().splitlines()[1:] == [str(gone.pk)]
