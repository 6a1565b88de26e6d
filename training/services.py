"""Putting uploads into a dataset's originals folder and queueing its preparation.

The one code path for the admin and `manage.py prepare_dataset`. Originals are written once, under
names that cannot leave the dataset folder, and never touched again; preparation only reads them.
"""
import os
import shutil
import unicodedata
import zipfile
from pathlib import Path, PurePosixPath

import django_rq
from django.conf import settings
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from training.dataprep import ZipLimits, ZipRefused, extract
from training.dataprep.safezip import inspect, safe_member_path, unique_relative
from training.models import Dataset

QUEUE_NAME = "training"
TASK_PATH = "training.tasks.prepare_dataset_job"
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


def claim_for_preparation(dataset: Dataset) -> bool:
    """Mark the dataset 'preparing' unless it already is; False when another preparation holds it."""
    claimed = Dataset.objects.filter(pk=dataset.pk).exclude(status=Dataset.Status.PREPARING).update(
        status=Dataset.Status.PREPARING, progress_done=0, progress_total=0, error=""
    )
    dataset.refresh_from_db()
    return bool(claimed)


def enqueue_preparation(dataset: Dataset) -> bool:
    """Queue the preparation on the 'training' queue; Redis sees it when the transaction commits."""
    if not claim_for_preparation(dataset):
        return False
    job_id = f"dataset-prep-{dataset.pk}-{os.urandom(4).hex()}"
    Dataset.objects.filter(pk=dataset.pk).update(rq_job_id=job_id)
    queue = django_rq.get_queue(QUEUE_NAME, commit_mode="on_db_commit")
    queue.enqueue(TASK_PATH, dataset.pk, job_id=job_id)
    dataset.refresh_from_db()
    return True


def reconcile(dataset: Dataset) -> Dataset:
    """A dataset stuck in 'preparing' whose job failed or vanished (worker killed) is marked failed."""
    if dataset.status != Dataset.Status.PREPARING or not dataset.rq_job_id:
        return dataset
    try:
        status = Job.fetch(dataset.rq_job_id, connection=django_rq.get_connection(QUEUE_NAME)).get_status(refresh=True)
    except NoSuchJobError:
        status = None
    if status in (None, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        Dataset.objects.filter(pk=dataset.pk, status=Dataset.Status.PREPARING).update(
            status=Dataset.Status.FAILED,
            error="The preparation stopped unexpectedly (worker killed or job lost); prepare the dataset again.",
        )
        dataset.refresh_from_db()
    return dataset
