"""Unpacking uploads: zip-slip and zip bombs are refused before anything is written."""
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from tests.datasets.builders import zip_bytes
from training.dataprep import ZipLimits, ZipRefused, extract


def refused(files: dict, tmp_path: Path, limits=ZipLimits()) -> str:
    target = tmp_path / "originals"
    target.mkdir()
    with pytest.raises(ZipRefused) as failure:
        extract(io.BytesIO(files if isinstance(files, bytes) else zip_bytes(files)), target, limits)
    assert os.listdir(target) == [] and sorted(os.listdir(tmp_path)) == ["originals"]  # nothing written
    return str(failure.value)


@pytest.mark.parametrize("name, words", [
    ("../evil.png", "climbs out"),
    ("pics/../../evil.png", "climbs out"),
    ("/etc/evil.png", "absolute path"),
    ("C:/Windows/evil.png", "drive letter"),
    ("..\\evil.png", "climbs out"),
])
def test_paths_that_escape_are_refused_by_name(name, words, tmp_path):
    message = refused({"ok.png": b"x", name: b"payload"}, tmp_path)
    assert words in message and repr(name) in message


def test_symlink_member_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    assert "symbolic link" in refused(buffer.getvalue(), tmp_path)


def test_zip_bomb_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("zeros.bmp", "w", force_zip64=True) as member:
            block = bytes(16 * 1024 * 1024)
            for _ in range(200 // 16):
                member.write(block)
    assert len(buffer.getvalue()) < 1024 * 1024  # ~200 MB of zeros in a few hundred KB
    message = refused(buffer.getvalue(), tmp_path)
    assert "zip bomb" in message and "'zeros.bmp'" in message


def test_total_size_and_file_count_are_capped(tmp_path):
    files = {f"p{i}.png": bytes(1000) for i in range(5)}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert "more than 4 files" in refused(files, tmp_path / "a", ZipLimits(max_files=4))
    assert "unpacks to more than" in refused(files, tmp_path / "b", ZipLimits(max_total_bytes=3000))


def test_header_that_lies_about_size_is_caught_while_unpacking(tmp_path):
    data = bytearray(zip_bytes({"a.png": bytes(5000)}, zipfile.ZIP_STORED))
    # Forge the central directory's "uncompressed size" to 100 bytes: extraction must notice.
    central = data.rfind(b"PK\x01\x02")
    data[central + 24:central + 28] = (100).to_bytes(4, "little")
    message = refused(bytes(data), tmp_path)
    assert "'a.png'" in message and ("header claims" in message or "cannot be unpacked" in message)


def test_a_good_zip_unpacks_with_nested_unicode_names(tmp_path):
    target = tmp_path / "originals"
    target.mkdir()
    (target / "a.png").write_bytes(b"existing")
    stored = extract(io.BytesIO(zip_bytes({"a.png": b"new", "名前 フォルダ/キャラ 1.png": b"x"})), target, ZipLimits())
    assert [p.as_posix() for p in stored] == ["a (2).png", "名前 フォルダ/キャラ 1.png"]
    assert (target / "a.png").read_bytes() == b"existing"  # never overwritten
    assert (target / "名前 フォルダ" / "キャラ 1.png").read_bytes() == b"x"
    assert [p.name for p in tmp_path.iterdir()] == ["originals"]
