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
                 "--class-prompt", "a girl", "--workers", "1")
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
    out = capsys.readouterr().out
    assert "ready: 13 kept, 2 duplicate, 4 rejected, 3 skipped, 1 caption" in out
    assert "broken/truncated.jpg: cannot decode" in out


def test_zip_in_bucket_mode(tmp_path):
    archive = tmp_path / "set.zip"
    archive.write_bytes(zip_bytes({"a/wide.png": encode(textured(900, 400, 1), "PNG"),
                                   "a/tall.jpg": encode(textured(400, 800, 2), "JPEG")}))
    call_command("prepare_dataset", str(archive), "--name", "zipped", "--mode", "bucket", "--resolution", "768",
                 "--instance-prompt", "sks")
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
    (["--resolution", "500"], "multiple of 64"),
    (["--min-size", "0"], "min-size"),
    (["--name", "has space"], "name"),
])
def test_bad_flags_are_one_line_errors(tmp_path, args, message):
    source = write_tree(tmp_path / "s", {"a.png": encode(textured(300, 300, 1), "PNG")})
    base = ["--name", "ok"] if "--name" not in args else []
    with pytest.raises(CommandError, match=message) as failure:
        call_command("prepare_dataset", str(source), *base, *args)
    assert "\n" not in str(failure.value)


def test_missing_source(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("prepare_dataset", str(tmp_path / "nope"), "--name", "x")


@pytest.mark.django_db(transaction=True)
def test_command_line_shows_progress_on_stderr(tmp_path):
    source = write_tree(tmp_path / "s", {f"p{i}.png": encode(textured(300, 300, i), "PNG") for i in range(3)})
    done = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "prepare_dataset", str(source), "--name", "cli", "--instance-prompt", "sks"],
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
    call_command("prepare_dataset", str(source), "--name", "again", "--instance-prompt", "sks", "--workers", "1")
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
