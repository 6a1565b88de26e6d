"""manage.py prepare_dataset SRC --name NAME: a dataset from a folder or zip, prepared in-process.

A thin shell over training.datasets (ingest) and training.tasks (prepare), the same code the admin
runs; bad input ends in a one-line CommandError, progress goes to stderr.
"""
import shutil
import zipfile
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError
from tqdm import tqdm

from training import datasets
from training.dataprep import ConfigError, PrepConfig, summary
from training.dataprep.sources import PICTURE_KINDS, has_pictures
from training.models import Dataset, base_native_size as model_native_size
from training.tasks import run_preparation


def base_native_size(name_or_path: str | None) -> int:
    """The native image side of the base model the set is for: a diffusers folder, a registered name, or the
    default model; 512 when none is known."""
    from generator.engine.loading import folder_native_size
    from generator.models import AIModel

    if name_or_path and Path(name_or_path).is_dir():
        size = folder_native_size(name_or_path)
        if size is None:
            raise CommandError(f"--base-model {name_or_path}: not a diffusers folder (no unet/ and vae/ configs)")
        return size
    model = AIModel.objects.filter(name=name_or_path).first() if name_or_path else None
    if name_or_path and model is None:
        raise CommandError(f"--base-model {name_or_path}: no such folder and no registered model of that name")
    return model_native_size(model)


class Command(BaseCommand):
    help = "Create a dataset from a folder or .zip of pictures and prepare it for DreamBooth training."

    def add_arguments(self, parser):
        parser.add_argument("src", help="Folder or .zip with the pictures (and optional same-name .txt captions).")
        parser.add_argument("--name", required=True, help="Dataset name (slug; the folder under media/datasets/).")
        parser.add_argument("--base-model", help="Registered model name or diffusers folder the set is for: "
                                                 "--resolution defaults to its native size (default: the default model's)")
        parser.add_argument("--resolution", type=int, help="Training size in pixels (multiple of 8; default: the base "
                                                           "model's native size, 64 for the mini-world base, else 512).")
        parser.add_argument("--mode", choices=[m.value for m in Dataset.Mode], default="crop")
        parser.add_argument("--min-size", type=int, help="Reject pictures whose short side is smaller (default: the "
                                                         "resolution, so nothing is upscaled; lower it to let smaller "
                                                         "pictures in, each upscaled one is listed).")
        parser.add_argument("--instance-prompt", default="", help="Caption for pictures without a .txt file.")
        parser.add_argument("--class-prompt", default="")
        parser.add_argument("--workers", type=int, default=0, help="Threads for decoding and resizing (0: one per usable CPU core).")

    def handle(self, *args, **options):
        source = Path(options["src"])
        if options["resolution"] is None:
            options["resolution"] = base_native_size(options["base_model"])
        if options["min_size"] is None:
            options["min_size"] = options["resolution"]
        self._check(source, options)
        dataset = self._create(options)
        try:
            self._ingest(source, dataset)
        except datasets.UploadRefused as exc:
            dataset.delete()
            shutil.rmtree(dataset.root, ignore_errors=True)
            raise CommandError(str(exc)) from None
        result = self._prepare(dataset, options["workers"])
        dataset.refresh_from_db()
        if result is None:
            raise CommandError(f"dataset {dataset.name!r} failed: {dataset.error}")
        self.stdout.write(f"dataset {dataset.name!r} ready: {summary(result.manifest)}")
        self.stdout.write(f"prepared pictures in {dataset.prepared_dir}")
        for record in result.manifest["records"]:
            if record["status"] in ("rejected", "skipped", "duplicate"):
                self.stdout.write(f"  {record['status']:<9} {record['source']}: {record.get('reason', '')}")
            elif record.get("upscaled"):
                size = "x".join(map(str, record["source_size"]))
                self.stderr.write(f"  warning: {record['source']} ({size}) was upscaled to the training size")

    def _check(self, source: Path, options) -> None:
        if not source.exists():
            raise CommandError(f"{source} does not exist")
        if not (source.is_dir() or zipfile.is_zipfile(source)):
            raise CommandError(f"{source} is neither a folder nor a zip archive")
        if not has_pictures(source):
            raise CommandError(f"{source} holds no pictures ({PICTURE_KINDS}); add some, or point to another folder")
        try:
            PrepConfig(resolution=options["resolution"], mode=options["mode"], min_size=options["min_size"])
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        if options["workers"] < 0:
            raise CommandError(f"--workers {options['workers']}: expected 0 or more")

    def _create(self, options) -> Dataset:
        dataset = Dataset(
            name=options["name"], instance_prompt=options["instance_prompt"], class_prompt=options["class_prompt"],
            resolution=options["resolution"], mode=options["mode"], min_size=options["min_size"],
        )
        try:
            dataset.full_clean(exclude=["instance_prompt"])
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        if dataset.root.exists():
            raise CommandError(f"{dataset.root} already exists; choose another --name")
        try:
            dataset.save()
        except IntegrityError:
            raise CommandError(f"a dataset named {dataset.name!r} already exists") from None
        return dataset

    def _ingest(self, source: Path, dataset: Dataset) -> None:
        if source.is_dir():
            datasets.copy_folder(source, dataset)
            return
        with open(source, "rb") as archive:
            datasets.add_uploads(dataset, [File(archive, name=source.name)])

    def _prepare(self, dataset: Dataset, workers: int):
        # tqdm draws with "\r"; the OutputWrapper would add a newline to every redraw, so use its stream.
        with tqdm(desc=f"preparing {dataset.name}", unit="img", file=self.stderr._out, dynamic_ncols=True) as bar:
            def progress(done, total):
                bar.total = total
                bar.n = done
                bar.refresh()

            return run_preparation(dataset, workers=workers or None, on_progress=progress)

