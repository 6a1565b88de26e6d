"""Replacing a prepared folder all at once, so no reader ever sees half a dataset.

The new folder is built beside the target (same file system, so renames are atomic), then the old
folder is renamed away and the new one renamed in. A crash while building leaves only a hidden
`.building-*` folder, which the next preparation removes; the target is untouched.
"""
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

BUILDING_PREFIX = ".building-"
RETIRED_PREFIX = ".retired-"


def remove_leftovers(target: Path) -> None:
    """Delete building/retired folders a killed preparation left beside `target`."""
    if not target.parent.is_dir():
        return
    for entry in target.parent.iterdir():
        if entry.name.startswith((BUILDING_PREFIX + target.name, RETIRED_PREFIX + target.name)):
            shutil.rmtree(entry, ignore_errors=True)


@contextmanager
def staging(target: Path):
    """A fresh folder beside `target` to build into; removed again unless `swap_in` consumed it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{BUILDING_PREFIX}{target.name}-", dir=target.parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def swap_in(built: Path, target: Path) -> None:
    """Make `built` the new `target`; the previous `target` (if any) is deleted afterwards."""
    retired = None
    if target.exists():
        retired = Path(tempfile.mkdtemp(prefix=f"{RETIRED_PREFIX}{target.name}-", dir=target.parent))
        os.replace(target, retired / target.name)
    os.replace(built, target)
    _fsync_dir(target.parent)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
