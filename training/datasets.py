"""Putting uploads into a dataset's originals folder and queueing its preparation.

The one code path for the admin and `manage.py prepare_dataset`. Originals are written once, under
names that cannot leave the dataset folder, and never touched again; preparation only reads them.
"""
import os
import shutil
import unicodedata
import zipfile
from pathlib import Path, PurePosixPath

from django.conf import settings

from jobs import core as jobs
from training.dataprep import ZipLimits, ZipRefused, extract
from training.dataprep.safezip import inspect, safe_member_path, unique_relative
from training.models import Dataset

QUEUE_NAME = "training"
STOPPED = "The preparation stopped unexpectedly (worker killed or job lost); prepare the dataset again."
PREPARATION = jobs.JobKind(
    name="dataset-prep", model_label="training.Dataset", queue=QUEUE_NAME, task="training.tasks.prepare_dataset_job",
    died_reason=STOPPED, lost_reason=STOPPED, lost_queued_reason=STOPPED,
)
COPY_CHUNK = 1024 * 1024


class UploadRefused(ValueError):
    """An upload that is unsafe, too big or otherwise unusable; the message is shown as is."""


def zip_limits() -> ZipLimits:
    return ZipLimits(**getattr(settings, "RETROPORTAL_DATASET_LIMITS", {}))


def is_zip(name: str) -> bool:
    return name.lower().endswith(".zip")


def check_uploads(files) -> None:
    """Refuse an upload before anything is written: zips are inspected, totals capped."""
    limits = zip_limits()
    total_files, total_bytes = 0, 0
    for upload in files:
        if is_zip(upload.name):
            members = _inspect_upload(upload, limits)
            total_files += len(members)
            total_bytes += sum(m.info.file_size for m in members)
        else:
            _upload_name(upload.name)
            total_files += 1
            total_bytes += upload.size
    if total_files > limits.max_files:
        raise UploadRefused(f"the upload has {total_files} files; the limit is {limits.max_files}")
    if total_bytes > limits.max_total_bytes:
        raise UploadRefused(
            f"the upload unpacks to {total_bytes / 1024**2:,.1f} MB; the limit is {limits.max_total_bytes / 1024**2:,.1f} MB"
        )


def _inspect_upload(upload, limits: ZipLimits):
    upload.seek(0)
    try:
        with zipfile.ZipFile(upload) as archive:
            return inspect(archive, limits)
    except ZipRefused as exc:
        raise UploadRefused(f"{upload.name}: {exc}") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise UploadRefused(f"{upload.name}: not a readable zip archive ({exc})") from None
    finally:
        upload.seek(0)


def add_uploads(dataset: Dataset, files) -> list[str]:
    """Store uploaded files (zips unpacked) in the dataset's originals; returns the stored paths."""
    check_uploads(files)
    originals = dataset.originals_dir
    originals.mkdir(parents=True, exist_ok=True)
    stored = []
    for upload in files:
        if is_zip(upload.name):
            stored += [p.as_posix() for p in _extract_upload(upload, originals)]
        else:
            stored.append(_store_file(upload, originals).as_posix())
    return stored


def _extract_upload(upload, originals: Path) -> list[PurePosixPath]:
    upload.seek(0)
    try:
        return extract(upload, originals, zip_limits())
    except ZipRefused as exc:
        raise UploadRefused(f"{upload.name}: {exc}") from None


def _store_file(upload, originals: Path) -> PurePosixPath:
    rel = unique_relative(originals, _upload_name(upload.name))
    with open(originals / rel, "xb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return rel


def _upload_name(name: str) -> PurePosixPath:
    """A browser sends a bare file name; anything with a folder part is cut to its last component."""
    base = unicodedata.normalize("NFC", name.replace("\\", "/")).rsplit("/", 1)[-1]
    try:
        return safe_member_path(base)
    except ZipRefused as exc:
        raise UploadRefused(str(exc).replace("zip member", "file")) from None


def copy_folder(source: Path, dataset: Dataset) -> int:
    """Copy a folder tree into the dataset's originals (for the command); links are refused."""
    files = []
    for folder, dirnames, filenames in os.walk(source, followlinks=False):
        for name in sorted(filenames + dirnames):
            path = Path(folder, name)
            if path.is_symlink():
                raise UploadRefused(f"{path.relative_to(source)} is a symbolic link; links are not copied")
            if path.is_file():
                files.append(path)
    limits = zip_limits()
    total = sum(p.stat().st_size for p in files)
    if len(files) > limits.max_files or total > limits.max_total_bytes:
        raise UploadRefused(
            f"{source} has {len(files)} files, {total / 1024**2:,.1f} MB; the limits are "
            f"{limits.max_files} files and {limits.max_total_bytes / 1024**2:,.1f} MB"
        )
    for path in files:
        destination = dataset.originals_dir / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination, follow_symlinks=False)
    return len(files)


def enqueue_preparation(dataset: Dataset) -> bool:
    """Queue the preparation on the 'training' queue once the transaction commits; False when a preparation
    is already queued or running."""
    return jobs.enqueue(PREPARATION, dataset, Dataset.states_allowing("prepare"), progress_done=0, progress_total=0)


def reconcile(dataset: Dataset) -> Dataset:
    """A preparation whose worker died or whose job vanished is marked failed (jobs.core.reconcile)."""
    return jobs.reconcile(PREPARATION, dataset)
