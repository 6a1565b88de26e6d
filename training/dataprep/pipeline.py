"""Turning a folder of uploaded files into a prepared training set: the one entry point.

Layout of the result (all of it appears at once, see `publish`):

    <target>/images/0000.png, 0000.txt, 0001.png, ...   pictures and their captions
    <target>/manifest.json                               one record per uploaded file
    <target>/contact_sheet.png                           thumbnails and the files left out

The source folder is only read, never written.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from . import contact_sheet, dedup, manifest, publish, sources
from .config import PrepConfig
from .decode import require_strict_decoding
from .manifest import Record, Status
from .process import Prepared, encode_png, prepare_file

IMAGES_DIR = "images"
WORK_DIR = ".work"  # pictures by source index, renamed to their output names once dedup has run
MANIFEST_NAME = "manifest.json"
CONTACT_SHEET_NAME = "contact_sheet.png"
POOL_MIN_FILES = 8  # below this, a pool is not worth it

LEFT_OUT = (Status.REJECTED, Status.SKIPPED, Status.DUPLICATE)
Progress = Callable[[int, int], None]


class NoUsableImages(ValueError):
    """Nothing in the upload can be trained on; `manifest` says what happened to each file."""

    def __init__(self, message: str, manifest: dict):
        super().__init__(message)
        self.manifest = manifest


@dataclass(frozen=True)
class PrepResult:
    manifest: dict
    target: Path

    @property
    def counts(self) -> dict[str, int]:
        return self.manifest["counts"]

    @property
    def kept(self) -> list[dict]:
        return [r for r in self.manifest["records"] if r["status"] == Status.KEPT.value]


def prepare(source: Path, target: Path, config: PrepConfig, progress: Progress | None = None) -> PrepResult:
    """Prepare every file under `source` into `target` (replaced as a whole when done).

    Raises NoUsableImages (target untouched) when no picture survives, or there is no picture at all.
    """
    require_strict_decoding()
    source, target = Path(source), Path(target)
    if not source.is_dir():  # an empty upload leaves no originals folder behind
        raise NoUsableImages(f"No pictures: {source} is missing or empty; add {sources.PICTURE_KINDS} files",
                             manifest.build([], config.output_settings()))
    publish.remove_leftovers(target)
    files = sources.scan(source)
    images = [f.rel for f in files if f.kind is sources.Kind.IMAGE]
    with publish.staging(target) as building:
        work = building / WORK_DIR
        work.mkdir()
        results = dict(zip(images, _prepare_all(source, images, work, config, progress)))
        records = _records(source, files, results, config)
        document = manifest.build(records, config.output_settings())
        if not document["counts"][Status.KEPT.value]:
            raise NoUsableImages(_no_usable_message(document), document)
        _write(building, records, results, document)
        shutil.rmtree(work)
        publish.swap_in(building, target)
    return PrepResult(document, target)


def summary(document: dict) -> str:
    """'12 kept, 2 duplicate, 1 rejected, 3 skipped, 4 caption' (statuses with zero left out)."""
    parts = [f"{n} {status}" for status, n in document["counts"].items() if n]
    return ", ".join(parts) or "no files"


def _prepare_all(
    source: Path, images: list[str], work: Path, config: PrepConfig, progress: Progress | None
) -> list[Prepared]:
    """Prepare pictures in order; with workers > 1 on a thread pool.

    Threads, not processes: PIL and hashlib release the GIL while decoding, resizing, encoding and
    hashing (nearly all the time per picture), and threads need no pickling of results, no start-up
    and no fork of a host that may hold CUDA or database connections. map() keeps the order.
    """
    total = len(images)
    if progress:
        progress(0, total)
    def one(index_rel):
        index, rel = index_rel
        return prepare_file(str(source), rel, config, str(work / f"{index:05d}.png"))

    workers = min(config.workers, usable_cpus(), total)
    if workers <= 1 or total < POOL_MIN_FILES:
        return _collect(map(one, enumerate(images)), total, progress)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="dataprep")
    try:
        return _collect(pool.map(one, enumerate(images)), total, progress)
    finally:  # on an interruption, drop the pictures not started yet instead of finishing them all
        pool.shutdown(wait=True, cancel_futures=True)


def usable_cpus() -> int:
    """CPUs this process may run on (its CPU affinity), not the machine's total."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _collect(mapped, total: int, progress: Progress | None) -> list[Prepared]:
    results = []
    for result in mapped:
        results.append(result)
        if progress:
            progress(len(results), total)
    return results


def _records(source: Path, files, results: dict[str, Prepared], config: PrepConfig) -> list[Record]:
    duplicates = dedup.find_duplicates(
        [dedup.Candidate(r.rel, r.pixel_sha256, r.dhash, r.source_size[0] * r.source_size[1])
         for r in results.values() if r.ok],
        config.near_duplicate_distance,
    )
    captions = _read_captions(source, files)
    records, next_index = [], 0
    for item in files:
        if item.kind is sources.Kind.IMAGE:
            record = _image_record(results[item.rel], duplicates.get(item.rel), captions, config)
            if record.status is Status.KEPT:
                record.output = f"{IMAGES_DIR}/{next_index:04d}.png"
                next_index += 1
        elif item.kind is sources.Kind.CAPTION:
            record = _caption_record(item, captions)
        else:
            record = Record(item.rel, Status.SKIPPED, reason=item.skip_reason)
        records.append(record)
    return records


def _image_record(result: Prepared, duplicate, captions: dict[str, Caption], config: PrepConfig) -> Record:
    record = Record(
        result.rel, Status.KEPT, sha256=result.sha256, pixel_sha256=result.pixel_sha256,
        dhash=f"{result.dhash:016x}" if result.ok else "", format=result.format, mode=result.mode,
        bytes=result.bytes, source_size=_pair(result.source_size), notes=list(result.notes),
    )
    if not result.ok:
        record.status, record.reason = Status.REJECTED, result.reason
    elif duplicate is not None:
        record.status, record.reason, record.duplicate_of = Status.DUPLICATE, duplicate.reason, duplicate.of
    else:
        record.output_size, record.bucket = _pair(result.output_size), _pair(result.bucket)
        record.upscaled = result.upscaled
        if result.upscaled:
            record.notes.append("upscaled: the picture is smaller than the training size")
        caption = captions.get(result.rel, Caption(""))
        record.caption = caption.text or config.instance_prompt
        record.caption_source = "sidecar file" if caption.text else "instance prompt"
        record.caption_file = caption.file if caption.text else ""
    return record


def _caption_record(item, captions: dict[str, Caption]) -> Record:
    problems = sorted({captions[image].problem for image in item.caption_for if captions[image].problem})
    if problems:
        return Record(item.rel, Status.SKIPPED, reason=problems[0])
    return Record(item.rel, Status.CAPTION, reason="caption for " + ", ".join(item.caption_for))


@dataclass(frozen=True)
class Caption:
    file: str
    text: str = ""
    problem: str = ""


def _read_captions(source: Path, files) -> dict[str, Caption]:
    """Picture path -> its sidecar caption.

    Sidecars are UTF-8 (a BOM is tolerated); lines are joined with spaces, surrounding blanks dropped.
    """
    captions = {}
    for image, caption_rel in sources.caption_files(files).items():
        try:
            raw = source.joinpath(caption_rel).read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            problem = "caption file is not UTF-8 text; the instance prompt is used"
            captions[image] = Caption(caption_rel, problem=problem)
            continue
        captions[image] = Caption(caption_rel, " ".join(raw.split()))
    return captions


def _write(folder: Path, records: list[Record], results: dict[str, Prepared], document: dict) -> None:
    images = folder / IMAGES_DIR
    images.mkdir()
    kept = []
    for record in records:
        if record.status is not Status.KEPT:
            continue
        result = results[record.source]
        output = folder / record.output
        os.replace(result.png_file, output)
        output.with_suffix(".txt").write_text(record.caption + "\n", encoding="utf-8")
        size, pixels = result.thumb
        kept.append((Path(record.output).name, Image.frombytes("RGB", size, pixels)))
    left_out = [(r.status.value, r.source, r.reason) for r in records if r.status in LEFT_OUT]
    (folder / CONTACT_SHEET_NAME).write_bytes(encode_png(contact_sheet.render(kept, left_out)))
    (folder / MANIFEST_NAME).write_bytes(manifest.dumps(document))


def _no_usable_message(document: dict) -> str:
    rejected = [r for r in document["records"] if r["status"] in ("rejected", "duplicate", "skipped")]
    examples = "; ".join(f"{r['source']}: {r.get('reason', '')}" for r in rejected[:3])
    more = f" (and {len(rejected) - 3} more)" if len(rejected) > 3 else ""
    if not document["records"]:
        return "No usable picture: the upload has no files."
    return f"No usable picture among {len(document['records'])} files ({summary(document)}). {examples}{more}"


def _pair(value) -> list[int] | None:
    return list(value) if value else None
