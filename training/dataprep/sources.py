"""Sorting the files of an upload into pictures, their caption files, and everything else.

The order is the sorted relative POSIX path, the same on every machine and file system, which is
what makes output names (0000.png, 0001.png, ...) stable across re-runs.
"""
import os
import zipfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePosixPath

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".bmp", ".dib", ".gif", ".tif", ".tiff"})
PICTURE_KINDS = ".png/.jpg/.webp/.bmp/.gif/.tif"  # how messages name IMAGE_SUFFIXES
CAPTION_SUFFIX = ".txt"
SYSTEM_FOLDERS = frozenset({"__MACOSX", ".git", ".svn", "@eaDir"})
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini", ".ds_store"})


class Kind(str, Enum):
    IMAGE = "image"
    CAPTION = "caption"
    OTHER = "other"


@dataclass(frozen=True)
class SourceFile:
    """One file of the upload; `skip_reason` is set for files that are neither pictures nor captions."""

    rel: str  # relative POSIX path inside the originals folder
    kind: Kind
    skip_reason: str = ""
    caption_for: tuple[str, ...] = ()  # for captions: the pictures that use it


def scan(root: Path) -> list[SourceFile]:
    """Every file under `root`, classified, in sorted path order. Symbolic links are not followed."""
    rels = sorted(_walk(root))
    images = [rel for rel in rels if _suffix(rel) in IMAGE_SUFFIXES and not _system_reason(rel)]
    by_stem = {}
    for rel in images:
        by_stem.setdefault(_stem_key(rel), []).append(rel)
    return [_classify(root, rel, by_stem) for rel in rels]


def has_pictures(source: Path) -> bool:
    """Whether a folder or a zip archive holds at least one picture file (by name; decoding comes later)."""
    if Path(source).is_dir():
        return any(_suffix(rel) in IMAGE_SUFFIXES and not _system_reason(rel) for rel in _walk(Path(source)))
    with zipfile.ZipFile(source) as archive:
        return any(_suffix(name) in IMAGE_SUFFIXES and not _system_reason(name) and not name.endswith("/")
                   for name in archive.namelist())


def caption_files(sources: list[SourceFile]) -> dict[str, str]:
    """Picture path -> caption file path, for pictures that have a sidecar caption."""
    return {image: source.rel for source in sources if source.kind is Kind.CAPTION for image in source.caption_for}


def _walk(root: Path):
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(folder, d))]:
            yield PurePosixPath(Path(folder, name).relative_to(root)).as_posix()


def _classify(root: Path, rel: str, by_stem: dict[str, list[str]]) -> SourceFile:
    path = root / rel
    if path.is_symlink():
        return SourceFile(rel, Kind.OTHER, "symbolic link, not followed")
    if reason := _system_reason(rel):
        return SourceFile(rel, Kind.OTHER, reason)
    suffix = _suffix(rel)
    if suffix in IMAGE_SUFFIXES:
        return SourceFile(rel, Kind.IMAGE)
    if suffix == CAPTION_SUFFIX:
        users = tuple(by_stem.get(_stem_key(rel), ()))
        if users:
            return SourceFile(rel, Kind.CAPTION, caption_for=users)
        return SourceFile(rel, Kind.OTHER, "caption file without a picture of the same name")
    return SourceFile(rel, Kind.OTHER, f"not a picture type we accept ({suffix or 'no extension'})")


def _system_reason(rel: str) -> str:
    parts = PurePosixPath(rel).parts
    if any(part in SYSTEM_FOLDERS for part in parts[:-1]) or parts[-1].lower() in SYSTEM_FILES:
        return "system file (archive or OS metadata)"
    if any(part.startswith(".") for part in parts):
        return "hidden file"
    return ""


def _suffix(rel: str) -> str:
    return PurePosixPath(rel).suffix.lower()


def _stem_key(rel: str) -> str:
    """Folder and name without extension: 'a/b.png' and 'a/b.txt' share 'a/b'."""
    path = PurePosixPath(rel)
    return str(path.with_suffix("")) if path.suffix else str(path)
