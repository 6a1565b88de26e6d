"""The manifest: one record per uploaded file saying what became of it, and why.

It is written as sorted, indented UTF-8 JSON without timestamps, so preparing the same upload twice
gives the same bytes, and a diff between two preparations shows exactly what changed.
"""
import json
import zlib
from dataclasses import asdict, dataclass, field
from enum import Enum

import PIL

MANIFEST_VERSION = 1


class Status(str, Enum):
    KEPT = "kept"  # prepared and part of the training set
    DUPLICATE = "duplicate"  # a picture already in the set (exact or near copy)
    REJECTED = "rejected"  # looks like a picture but cannot be used (corrupt, too small, ...)
    SKIPPED = "skipped"  # not a picture at all (other files, system files, orphan captions)
    CAPTION = "caption"  # a sidecar caption consumed by the picture of the same name


STATUS_ORDER = tuple(Status)


@dataclass
class Record:
    """What happened to one source file. Sizes are [width, height]; empty fields are left out."""

    source: str
    status: Status
    reason: str = ""
    duplicate_of: str = ""
    sha256: str = ""  # of the file bytes, to recognise the upload later
    pixel_sha256: str = ""  # of the decoded pixels, the exact-duplicate key
    dhash: str = ""  # 16 hex digits, the near-duplicate key
    format: str = ""
    mode: str = ""
    bytes: int = 0
    source_size: list[int] | None = None  # after EXIF orientation
    output: str = ""
    output_size: list[int] | None = None
    bucket: list[int] | None = None
    caption: str = ""
    caption_source: str = ""  # "sidecar file" or "instance prompt"
    caption_file: str = ""
    upscaled: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["status"] = self.status.value
        return {key: value for key, value in data.items() if value not in ("", None, [], False) or key == "bytes"}


def count(records: list[Record]) -> dict[str, int]:
    """Files per status, every status present (zeros included)."""
    counts = {status.value: 0 for status in STATUS_ORDER}
    for record in records:
        counts[record.status.value] += 1
    return counts


def software() -> dict[str, str]:
    """Versions that decide the output bytes (resampling and PNG compression): same versions, same bytes."""
    return {"pillow": PIL.__version__, "zlib": zlib.ZLIB_RUNTIME_VERSION}


def build(records: list[Record], settings: dict) -> dict:
    return {
        "version": MANIFEST_VERSION,
        "settings": settings,
        "software": software(),
        "counts": count(records),
        "records": [record.as_dict() for record in records],
    }


def dumps(manifest: dict) -> bytes:
    return (json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")
