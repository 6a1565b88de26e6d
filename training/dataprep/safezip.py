"""Unpacking an uploaded zip without letting it write outside its folder or fill the disk.

Every member is checked before anything is written: its path must stay inside the target (no
absolute paths, drive letters, `..`, symbolic links), the number of files and the total declared
size are capped, and a member that inflates far more than pictures ever do (a run of zeros) is
refused as a zip bomb. Extraction then counts the bytes really written, since the sizes in a zip
header are only claims. Refusals raise ZipRefused with a message naming the member.
"""
import shutil
import stat
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

CHUNK = 1024 * 1024


class ZipRefused(ValueError):
    """The archive is unsafe or too big; the message says which member and why."""


@dataclass(frozen=True)
class ZipLimits:
    """Caps on one archive. max_ratio applies to members above ratio_floor_bytes (small files may
    compress well by nature; a bomb needs size)."""

    max_files: int = 2000
    max_total_bytes: int = 2 * 1024**3
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class Member:
    info: zipfile.ZipInfo
    path: PurePosixPath  # safe relative path


def safe_member_path(name: str) -> PurePosixPath:
    """The relative path a member may be written to, or ZipRefused naming it."""
    cleaned = unicodedata.normalize("NFC", name.replace("\\", "/"))
    if "\x00" in cleaned:
        raise ZipRefused(f"zip member {name!r} has a NUL character in its name")
    if cleaned.startswith("/"):
        raise ZipRefused(f"zip member {name!r} has an absolute path; only relative paths are allowed")
    parts = [part for part in cleaned.split("/") if part not in ("", ".")]
    if parts and len(parts[0]) >= 2 and parts[0][1] == ":":
        raise ZipRefused(f"zip member {name!r} starts with a drive letter; only relative paths are allowed")
    if ".." in parts:
        raise ZipRefused(f"zip member {name!r} climbs out of the archive with '..'")
    if not parts:
        raise ZipRefused(f"zip member {name!r} has an empty path")
    if any(len(part.encode("utf-8")) > 255 for part in parts):
        raise ZipRefused(f"zip member {name!r} has a path component longer than 255 bytes")
    return PurePosixPath(*parts)


def inspect(archive: zipfile.ZipFile, limits: ZipLimits) -> list[Member]:
    """The file members of `archive`, checked against `limits` (directories are left out)."""
    members, seen, total = [], set(), 0
    for info in archive.infolist():
        if info.is_dir():
            safe_member_path(info.filename)
            continue
        member = Member(info, _check_member(info, limits))
        key = member.path.as_posix().casefold()
        if key in seen:
            raise ZipRefused(f"zip member {info.filename!r} appears twice in the archive")
        seen.add(key)
        members.append(member)
        total += info.file_size
        if len(members) > limits.max_files:
            raise ZipRefused(f"the archive has more than {limits.max_files} files (the limit)")
        if total > limits.max_total_bytes:
            raise ZipRefused(
                f"the archive unpacks to more than {_mb(limits.max_total_bytes)} (the limit); split it into smaller uploads"
            )
    return members


def _check_member(info: zipfile.ZipInfo, limits: ZipLimits) -> PurePosixPath:
    path = safe_member_path(info.filename)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ZipRefused(f"zip member {info.filename!r} is a symbolic link; links are not allowed")
    if info.flag_bits & 0x1:
        raise ZipRefused(f"zip member {info.filename!r} is encrypted; upload an archive without a password")
    if info.file_size > limits.ratio_floor_bytes:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            raise ZipRefused(
                f"zip member {info.filename!r} inflates {ratio:.0f}x ({_mb(info.compress_size)} to "
                f"{_mb(info.file_size)}; the limit is {limits.max_ratio:.0f}x): refused as a zip bomb"
            )
    return path


def extract(source, target: Path, limits: ZipLimits) -> list[PurePosixPath]:
    """Unpack the zip `source` (path or binary file) into the existing folder `target`.

    Unpacks into a temporary folder beside `target` first, so a refusal half-way leaves nothing.
    Existing files in `target` are never overwritten: clashing names get a " (2)" suffix.
    """
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ZipRefused(f"not a readable zip archive ({exc})") from None
    with archive:
        members = inspect(archive, limits)
        staging = Path(tempfile.mkdtemp(prefix=".unzip-", dir=target.parent))
        try:
            _write_members(archive, members, staging, limits)
            return [_move_into(staging, member.path, target) for member in members]
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _write_members(archive: zipfile.ZipFile, members: list[Member], staging: Path, limits: ZipLimits) -> None:
    written = 0
    for member in members:
        destination = staging.joinpath(*member.path.parts)
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member.info) as src, open(destination, "xb") as dst:
                written = _copy_counted(src, dst, member, written, limits)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
            raise ZipRefused(f"zip member {member.info.filename!r} cannot be unpacked ({exc})") from None


def _copy_counted(src, dst, member: Member, written: int, limits: ZipLimits) -> int:
    own = 0
    while chunk := src.read(CHUNK):
        own += len(chunk)
        written += len(chunk)
        if own > member.info.file_size:
            raise ZipRefused(f"zip member {member.info.filename!r} unpacks to more than its header claims")
        if written > limits.max_total_bytes:
            raise ZipRefused(f"the archive unpacks to more than {_mb(limits.max_total_bytes)} (the limit)")
        dst.write(chunk)
    return written


def _move_into(staging: Path, rel: PurePosixPath, target: Path) -> PurePosixPath:
    final = unique_relative(target, rel)
    destination = target.joinpath(*final.parts)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging.joinpath(*rel.parts).rename(destination)
    return final


def unique_relative(folder: Path, rel: PurePosixPath) -> PurePosixPath:
    """`rel`, or `name (2).ext`, `name (3).ext`... if a file of that name already exists in `folder`."""
    candidate, number = rel, 2
    while folder.joinpath(*candidate.parts).exists():
        candidate = rel.with_name(f"{rel.stem} ({number}){rel.suffix}")
        number += 1
    return candidate


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:,.1f} MB"
