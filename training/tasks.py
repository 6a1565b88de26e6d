"""The dataset preparation job ('training' queue), also run in-process by `manage.py prepare_dataset`.

Order matters: the prepared folder is swapped in first, and only then is the row marked ready, so a
dataset that says 'ready' always has its complete prepared folder on disk.
"""
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from training.dataprep import NoUsableImages, PrepResult, prepare
from training.dataprep.pipeline import usable_cpus
from training.models import Dataset, DatasetImage

PROGRESS_INTERVAL_S = 0.5


def prepare_dataset_job(dataset_id: int) -> str:
    """RQ entry point: prepare one dataset; returns the summary line."""
    dataset = Dataset.objects.get(pk=dataset_id)
    result = run_preparation(dataset)
    return "failed: " + dataset.error if result is None else f"ready: {dataset.kept_count} pictures"


def preparation_workers() -> int:
    configured = getattr(settings, "RETROPORTAL_DATASET_WORKERS", 0)
    return configured if configured > 0 else usable_cpus()


def run_preparation(dataset: Dataset, workers: int | None = None, on_progress=None) -> PrepResult | None:
    """Prepare `dataset` now; None (and status failed, with the reason) when nothing is usable."""
    Dataset.objects.filter(pk=dataset.pk).update(status=Dataset.Status.PREPARING, error="")
    reporter = _ProgressWriter(dataset.pk, on_progress)
    try:
        result = prepare(
            dataset.originals_dir, dataset.prepared_dir, dataset.prep_config(workers or preparation_workers()), reporter
        )
    except NoUsableImages as exc:
        _mark_failed(dataset, str(exc), exc.manifest)
        return None
    except BaseException as exc:  # Ctrl-C in the command or a job timeout must not leave it 'preparing'
        _mark_failed(dataset, f"{type(exc).__name__}: {exc}"[:2000] if str(exc) else type(exc).__name__, None)
        raise
    _mark_ready(dataset, result)
    return result


class _ProgressWriter:
    """Writes k/N to the row at most twice a second (and always the last step)."""

    def __init__(self, pk: int, on_progress):
        self.pk, self.on_progress, self.last = pk, on_progress, 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self.last >= PROGRESS_INTERVAL_S:
            Dataset.objects.filter(pk=self.pk).update(progress_done=done, progress_total=total)
            self.last = now
        if self.on_progress:
            self.on_progress(done, total)


def _mark_failed(dataset: Dataset, error: str, manifest: dict | None) -> None:
    with transaction.atomic():
        dataset.refresh_from_db()
        dataset.status, dataset.error = Dataset.Status.FAILED, error
        if manifest is not None:
            dataset.manifest = manifest
            dataset.set_counts(manifest["counts"])
        dataset.images.all().delete()
        dataset.save()


def _mark_ready(dataset: Dataset, result: PrepResult) -> None:
    with transaction.atomic():
        dataset.refresh_from_db()
        dataset.images.all().delete()
        DatasetImage.objects.bulk_create(_image_rows(dataset, result))
        dataset.manifest = result.manifest
        dataset.set_counts(result.counts)
        dataset.status, dataset.error, dataset.prepared_at = Dataset.Status.READY, "", timezone.now()
        dataset.save()


def _image_rows(dataset: Dataset, result: PrepResult) -> list[DatasetImage]:
    return [
        DatasetImage(
            dataset=dataset, output_name=r["output"], source_name=r["source"], caption=r["caption"],
            width=r["output_size"][0], height=r["output_size"][1],
            bucket="x".join(map(str, r["bucket"])) if r.get("bucket") else "", sha256=r["sha256"],
        )
        for r in result.kept
    ]
