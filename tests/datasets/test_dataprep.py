"""training.dataprep on a messy upload, without Django: statuses, sizes, orientation, determinism, safety."""
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from tests.datasets.builders import EXPECTED, encode, messy_files, textured, write_tree
from training.dataprep import NoUsableImages, PrepConfig, prepare, summary
from training.dataprep.resize import buckets


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    return write_tree(tmp_path_factory.mktemp("upload") / "originals", messy_files())


@pytest.fixture(scope="module")
def crop_run(messy, tmp_path_factory):
    before = tree_hashes(messy)
    target = tmp_path_factory.mktemp("crop") / "prepared"
    result = prepare(messy, target, PrepConfig(instance_prompt="a picture of sks girl", workers=1))
    return before, target, result


def by_source(result) -> dict[str, dict]:
    return {r["source"]: r for r in result.manifest["records"]}


def test_statuses_per_file(crop_run):
    _, _, result = crop_run
    assert result.counts == EXPECTED, summary(result.manifest)
    records = by_source(result)
    assert len(records) == len(messy_files())  # nothing lost: one record per uploaded file
    assert records["broken/truncated.jpg"]["status"] == "rejected"
    assert "truncated" in records["broken/truncated.jpg"]["reason"]
    assert "empty file" in records["broken/empty.jpg"]["reason"]
    assert "not a picture" in records["broken/not a picture.jpg"]["reason"]
    assert "too small" in records["tiny.png"]["reason"] and "256" in records["tiny.png"]["reason"]
    assert records["notes.md"]["status"] == "skipped"
    assert records["orphan.txt"]["status"] == "skipped"
    assert records[".DS_Store"]["status"] == "skipped"
    duplicates = {s: r for s, r in records.items() if r["status"] == "duplicate"}
    assert set(duplicates) == {"photos/plain.jpg", "photos/plain smaller.png"}
    assert "exact copy" in duplicates["photos/plain.jpg"]["reason"]
    assert "near-duplicate" in duplicates["photos/plain smaller.png"]["reason"]
    assert duplicates["photos/plain smaller.png"]["duplicate_of"] == "photos/plain copy.jpg"
    assert "first of 2 frames used" in records["anim.gif"]["notes"]
    assert {records[s]["mode"] for s in ("cmyk.jpg", "png/palette.png", "png/grey.png", "png/deep 16-bit.png",
                                         "png/rgba.png")} == {"CMYK", "P", "L", "I;16", "RGBA"}


def test_every_prepared_picture_is_rgb_at_the_resolution(crop_run):
    _, target, result = crop_run
    outputs = sorted((target / "images").glob("*.png"))
    assert [p.name for p in outputs] == [f"{i:04d}.png" for i in range(EXPECTED["kept"])]
    for path in outputs:
        with Image.open(path) as image:
            assert (image.mode, image.size) == ("RGB", (512, 512)), path.name
            assert not image.info, f"{path.name} carries metadata {image.info}"
        assert path.with_suffix(".txt").is_file()
    kept = [r for r in result.manifest["records"] if r["status"] == "kept"]
    assert [r["output"] for r in kept] == [f"images/{p.name}" for p in outputs]  # sorted source order


def test_captions_from_sidecar_else_instance_prompt(crop_run):
    _, target, result = crop_run
    records = by_source(result)
    named = records["名前 with spaces/キャラ 1.png"]
    assert named["caption"] == "レトロ anime girl, cel shading" and named["caption_source"] == "sidecar file"
    assert (target / named["output"]).with_suffix(".txt").read_text(encoding="utf-8") == named["caption"] + "\n"
    assert records["名前 with spaces/キャラ 1.txt"]["status"] == "caption"
    assert records["png/rgb.png"]["caption"] == "a picture of sks girl"


def test_exif_rotation_and_transparency(crop_run):
    _, target, result = crop_run
    records = by_source(result)
    rotated = records["exif/rotated.jpg"]
    assert rotated["source_size"] == [400, 800]
    pixels = np.asarray(Image.open(target / rotated["output"]))
    right_middle, top_middle = pixels[256, 500], pixels[10, 256]
    assert right_middle[0] > 200 and right_middle[1] < 60 and right_middle[2] < 60, right_middle
    assert not (top_middle[0] > 200 and top_middle[1] < 60), "the marker is where the unrotated picture has it"
    transparent = np.asarray(Image.open(target / records["png/rgba.png"]["output"]))
    assert tuple(transparent[5, 5]) == (255, 255, 255)  # composited on white, not black


def test_originals_untouched(crop_run, messy):
    before, _, _ = crop_run
    assert tree_hashes(messy) == before


def test_rerun_is_byte_identical_with_or_without_a_pool(crop_run, messy, tmp_path):
    _, target, _ = crop_run
    again = tmp_path / "prepared"
    prepare(messy, again, PrepConfig(instance_prompt="a picture of sks girl", workers=2))
    assert tree_hashes(again) == tree_hashes(target)
    prepare(messy, again, PrepConfig(instance_prompt="a picture of sks girl", workers=1))  # over an old result
    assert tree_hashes(again) == tree_hashes(target)
    assert sorted(os.listdir(tmp_path)) == ["prepared"]  # no staging leftovers


def test_bucket_mode_keeps_aspect_on_valid_buckets(messy, tmp_path):
    result = prepare(messy, tmp_path / "prepared", PrepConfig(mode="bucket", resolution=512, instance_prompt="x"))
    valid = set(buckets(512))
    assert all(w % 64 == 0 and h % 64 == 0 and w * h <= 512 * 512 for w, h in valid)
    for record in result.kept:
        width, height = record["bucket"]
        assert (width, height) in valid and record["output_size"] == [width, height]
        with Image.open(tmp_path / "prepared" / record["output"]) as image:
            assert image.size == (width, height) and image.mode == "RGB"
        src_w, src_h = record["source_size"]
        assert abs(np.log(width / height) - np.log(src_w / src_h)) < 0.15, record["source"]
    assert by_source(result)["exif/rotated.jpg"]["bucket"] == [320, 704]  # upright 1:2 -> closest portrait bucket


def test_no_usable_picture_is_an_error_and_writes_nothing(tmp_path):
    source = write_tree(tmp_path / "src", {"a.jpg": b"", "b.txt": b"caption", "tiny.png": encode(textured(64, 64, 1), "PNG")})
    with pytest.raises(NoUsableImages) as failure:
        prepare(source, tmp_path / "prepared", PrepConfig(instance_prompt="x"))
    assert "No usable picture among 3 files" in str(failure.value)
    assert failure.value.manifest["counts"]["rejected"] == 2
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_interrupted_preparation_keeps_the_previous_result(messy, tmp_path):
    target = tmp_path / "prepared"
    prepare(messy, target, PrepConfig(instance_prompt="old"))
    before = tree_hashes(target)

    def interrupt(done, total):
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare(messy, target, PrepConfig(instance_prompt="new"), progress=interrupt)
    assert tree_hashes(target) == before
    assert sorted(os.listdir(tmp_path)) == ["prepared"]


def test_truncated_images_stay_rejected_after_django_and_apps_load():
    """No imported module may switch PIL to padding truncated files with grey."""
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
    import training.admin  # noqa: F401
    import training.tasks  # noqa: F401

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_leftovers_of_a_killed_preparation_are_cleared(messy, tmp_path):
    (tmp_path / ".building-prepared-abc123" / "images").mkdir(parents=True)
    (tmp_path / ".building-prepared-abc123" / "images" / "0000.png").write_bytes(b"half")
    prepare(messy, tmp_path / "prepared", PrepConfig(instance_prompt="x"))
    assert sorted(os.listdir(tmp_path)) == ["prepared"]


def test_dataprep_never_imports_django():
    import subprocess
    import sys

    code = "import sys, training.dataprep.pipeline; print(sorted(m for m in sys.modules if m.startswith('django')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.strip() == "[]"


def test_missing_originals_folder_is_no_usable_pictures_in_one_line(tmp_path):
    """An upload without pictures leaves no originals folder: the dataset fails with a line, not a traceback."""
    with pytest.raises(NoUsableImages) as failure:
        prepare(tmp_path / "originals", tmp_path / "prepared", PrepConfig())
    assert str(failure.value) == (f"No pictures: {tmp_path / 'originals'} is missing or empty; "
                                  "add .png/.jpg/.webp/.bmp/.gif/.tif files")
    assert not (tmp_path / "prepared").exists()
