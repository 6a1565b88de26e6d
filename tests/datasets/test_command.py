"""manage.py prepare_dataset and the Dataset rows it leaves (real PostgreSQL)."""
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import REPO, worker_env
from tests.datasets.builders import EXPECTED, encode, messy_files, textured, write_tree, zip_bytes
from training.models import Dataset

pytestmark = pytest.mark.django_db


def hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_folder_becomes_a_ready_dataset(tmp_path, capsys):
    source = write_tree(tmp_path / "scans", messy_files())
    call_command("prepare_dataset", str(source), "--name", "レトロ-set", "--instance-prompt", "sks girl",
                 "--class-prompt", "a girl", "--workers", "1", "--min-size", "256")  # explicitly lets 256-511 px in
    dataset = Dataset.objects.get(name="レトロ-set")
    assert dataset.status == "done" and dataset.counts() == EXPECTED
    assert dataset.progress_done == dataset.progress_total == 19  # every picture-named file
    assert dataset.images.count() == EXPECTED["kept"]
    assert hashes(dataset.originals_dir) == hashes(source)  # originals kept byte-identical
    assert dataset.manifest == __import__("json").loads(dataset.manifest_path.read_text(encoding="utf-8"))
    assert dataset.contact_sheet_path.is_file()
    first = dataset.images.first()
    assert (first.output_name, first.width, first.height) == ("images/0000.png", 512, 512)
    assert (dataset.prepared_dir / first.output_name).is_file()
    captured = capsys.readouterr()
    assert "ready: 13 kept, 2 duplicate, 4 rejected, 3 skipped, 1 caption" in captured.out
    assert "broken/truncated.jpg: cannot decode" in captured.out
    upscaled = [r["source"] for r in dataset.manifest["records"] if r.get("upscaled")]
    assert upscaled and all(f"warning: {name} (" in captured.err for name in upscaled)  # one warning per picture


def test_zip_in_bucket_mode(tmp_path):
    archive = tmp_path / "set.zip"
    archive.write_bytes(zip_bytes({"a/wide.png": encode(textured(900, 400, 1), "PNG"),
                                   "a/tall.jpg": encode(textured(400, 800, 2), "JPEG")}))
    call_command("prepare_dataset", str(archive), "--name", "zipped", "--mode", "bucket", "--resolution", "768",
                 "--instance-prompt", "sks", "--min-size", "256")
    dataset = Dataset.objects.get(name="zipped")
    assert dataset.status == "done"
    assert sorted(dataset.images.values_list("bucket", flat=True)) == ["1152x512", "512x1088"]


def test_escaping_zip_is_refused_and_leaves_nothing(tmp_path):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(zip_bytes({"ok.png": encode(textured(300, 300, 1), "PNG"), "../../escape.png": b"x"}))
    with pytest.raises(CommandError, match=r"'../../escape.png' climbs out"):
        call_command("prepare_dataset", str(archive), "--name", "evil")
    assert not Dataset.objects.filter(name="evil").exists()
    assert not (Dataset(name="evil").root).exists()


def test_no_usable_picture_fails_the_dataset(tmp_path):
    source = write_tree(tmp_path / "junk", {"a.jpg": b"", "b.png": b"not png", "readme.md": b"hi"})
    with pytest.raises(CommandError, match="No usable picture among 3 files"):
        call_command("prepare_dataset", str(source), "--name", "junk")
    dataset = Dataset.objects.get(name="junk")
    assert dataset.status == "failed" and dataset.rejected_count == 2 and dataset.skipped_count == 1
    assert not dataset.prepared_dir.exists() and dataset.images.count() == 0


@pytest.mark.parametrize("args, message", [
    (["--resolution", "500"], "multiple of 8 between 64 and 2048"),
    (["--min-size", "0"], "min-size"),
    (["--name", "has space"], "name"),
])
def test_bad_flags_are_one_line_errors(tmp_path, args, message):
    source = write_tree(tmp_path / "s", {"a.png": encode(textured(300, 300, 1), "PNG")})
    base = ["--name", "ok"] if "--name" not in args else []
    with pytest.raises(CommandError, match=message) as failure:
        call_command("prepare_dataset", str(source), *base, *args)
    assert "\n" not in str(failure.value)


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_source_without_pictures_is_one_line_naming_it(tmp_path, kind):
    if kind == "folder":
        source = tmp_path / "empty"
        source.mkdir()
    else:
        source = tmp_path / "notes.zip"
        source.write_bytes(zip_bytes({"readme.md": b"no pictures here"}))
    with pytest.raises(CommandError) as failure:
        call_command("prepare_dataset", str(source), "--name", "nothing")
    assert str(failure.value) == f"{source} holds no pictures (.png/.jpg/.webp/.bmp/.gif/.tif); add some, or point to another folder"
    assert not Dataset.objects.filter(name="nothing").exists()


def test_pictures_below_the_training_size_are_refused_unless_min_size_lets_them_in(tmp_path, capsys):
    source = write_tree(tmp_path / "s", {"big.png": encode(textured(600, 600, 1), "PNG"),
                                         "small.png": encode(textured(300, 300, 2), "PNG")})
    call_command("prepare_dataset", str(source), "--name", "strict", "--instance-prompt", "sks", "--workers", "1")
    records = {r["source"]: r for r in Dataset.objects.get(name="strict").manifest["records"]}
    assert records["big.png"]["status"] == "kept" and records["small.png"]["status"] == "rejected"
    assert "512" in records["small.png"]["reason"] and "warning" not in capsys.readouterr().err


def test_64_px_dataset_for_the_mini_world_base_prepares_and_trains(tmp_path):
    """The shipped base is 64 px: --base-model gives the resolution, nothing is upscaled, and 2 steps train."""
    from training.dreambooth import load_config, train

    from training.miniworld.shipped import BASE

    source = write_tree(tmp_path / "s", {f"p{i}.png": encode(textured(80 + 10 * i, 70, i), "PNG") for i in range(3)})
    call_command("prepare_dataset", str(source), "--name", "mini", "--instance-prompt", "sks", "--workers", "1",
                 "--base-model", str(BASE))
    dataset = Dataset.objects.get(name="mini")
    assert dataset.status == "done" and (dataset.resolution, dataset.min_size) == (64, 64)
    assert sorted(dataset.images.values_list("width", "height")) == [(64, 64)] * 3
    assert not any(r.get("upscaled") for r in dataset.manifest["records"])
    cfg = load_config(None, dict(base_model=str(BASE), dataset=str(dataset.prepared_dir), out=str(tmp_path / "run"),
                                 instance_prompt="sks", resolution=64, max_steps=2, checkpoint_steps=0,
                                 validation_steps=0))
    result = train(cfg)
    assert result.step == 2 and (result.out / "lora_kohya.safetensors").is_file()


def test_missing_source(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("prepare_dataset", str(tmp_path / "nope"), "--name", "x")


@pytest.mark.django_db(transaction=True)
def test_command_line_shows_progress_on_stderr(tmp_path):
    source = write_tree(tmp_path / "s", {f"p{i}.png": encode(textured(300, 300, i), "PNG") for i in range(3)})
    done = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "prepare_dataset", str(source), "--name", "cli", "--instance-prompt", "sks",
         "--resolution", "256"],
        cwd=REPO, env=worker_env(), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "preparing cli" in done.stderr and "3/3" in done.stderr
    assert "dataset 'cli' ready: 3 kept" in done.stdout
    failed = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "prepare_dataset", str(tmp_path / "missing"), "--name", "y"],
        cwd=REPO, env=worker_env(), capture_output=True, text=True, timeout=120,
    )
    assert failed.returncode == 1 and failed.stderr.strip().count("\n") == 0 and "does not exist" in failed.stderr


def test_interrupted_preparation_is_failed_and_keeps_the_previous_set(tmp_path):
    from training.tasks import run_preparation

    source = write_tree(tmp_path / "s", {f"p{i}.png": encode(textured(300, 300, i), "PNG") for i in range(10)})
    call_command("prepare_dataset", str(source), "--name", "again", "--instance-prompt", "sks", "--workers", "1",
                 "--resolution", "256")
    dataset = Dataset.objects.get(name="again")
    before = hashes(dataset.prepared_dir)

    def interrupt(done, total):
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_preparation(dataset, workers=2, on_progress=interrupt)
    dataset.refresh_from_db()
    assert dataset.status == "failed" and dataset.error == "KeyboardInterrupt"
    assert hashes(dataset.prepared_dir) == before
    assert sorted(p.name for p in dataset.root.iterdir()) == ["originals", "prepared"]
    assert run_preparation(dataset, workers=1) is not None
    dataset.refresh_from_db()
    assert dataset.status == "done" and hashes(dataset.prepared_dir) == before  # byte-identical re-run
