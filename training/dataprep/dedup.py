"""Finding pictures that are already in the set: exact copies and near-duplicates.

Exact copies are found by a SHA-256 of the decoded, oriented RGB pixels (plus the size), not of the
file bytes: the same picture saved as PNG and as BMP, or with different metadata, is one picture.
Near-duplicates (re-encoded, resized, lightly retouched) are found by a 64-bit difference hash
(dHash): shrink to 9x8 grey, one bit per "is this pixel brighter than its right neighbour". Two
pictures whose hashes differ in at most `max_distance` bits (default 6 of 64) are the same picture.
Flat pictures without any gradient all hash alike, which is why the distance is kept small.
"""
import hashlib
from dataclasses import dataclass

import numpy as np
from PIL import Image


def pixel_sha256(image: Image.Image) -> str:
    """SHA-256 of the RGB pixels and the size: equal for the same picture in any container."""
    digest = hashlib.sha256(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def dhash(image: Image.Image) -> int:
    """The 64-bit difference hash of a picture (bit order: rows top to bottom, left to right)."""
    small = image.convert("L").resize((9, 8), Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.int16)
    bits = (pixels[:, 1:] > pixels[:, :-1]).flatten()
    return int("".join("1" if bit else "0" for bit in bits), 2)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@dataclass(frozen=True)
class Candidate:
    """A decodable picture as dedup sees it."""

    key: str  # the source path, unique
    pixel_sha256: str
    dhash: int
    pixels: int  # width * height of the decoded source


@dataclass(frozen=True)
class Duplicate:
    key: str
    of: str
    reason: str


def find_duplicates(candidates: list[Candidate], max_distance: int) -> dict[str, Duplicate]:
    """Which candidates duplicate another, keyed by source path.

    Within a group the biggest picture is kept (it has the most detail to train on); ties go to the
    first source path, so the choice is the same on every run.
    """
    keepers: list[Candidate] = []
    duplicates: dict[str, Duplicate] = {}
    for candidate in sorted(candidates, key=lambda c: (-c.pixels, c.key)):
        match = _match(candidate, keepers, max_distance)
        if match is None:
            keepers.append(candidate)
        else:
            duplicates[candidate.key] = match
    return duplicates


def _match(candidate: Candidate, keepers: list[Candidate], max_distance: int) -> Duplicate | None:
    for keeper in keepers:
        if keeper.pixel_sha256 == candidate.pixel_sha256:
            return Duplicate(candidate.key, keeper.key, f"exact copy of {keeper.key}")
    best = min(keepers, key=lambda k: hamming(k.dhash, candidate.dhash), default=None)
    if best is not None and (distance := hamming(best.dhash, candidate.dhash)) <= max_distance:
        return Duplicate(
            candidate.key, best.key, f"near-duplicate of {best.key} (dHash distance {distance}/64)"
        )
    return None
