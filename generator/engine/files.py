"""Atomic writes: readers see the old file or folder or the new one, never half of one."""
import os
import shutil
import tempfile
from pathlib import Path


def publish_dir(tmp_dir: str | os.PathLike, out_dir: Path) -> Path:
    """Move the fully written `tmp_dir` (on the same file system) to `out_dir`, replacing what was there.

    The folder is made readable by other users first (0755 folders, 0644 files; see make_readable).
    """
    out_dir = Path(out_dir)
    make_readable(tmp_dir)
    if out_dir.exists():
        old = out_dir.with_name(out_dir.name + ".old-" + os.path.basename(tmp_dir))
        os.replace(out_dir, old)
        os.replace(tmp_dir, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp_dir, out_dir)
    return out_dir


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write `data` (text is UTF-8) to a temp file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; others (a web server, a worker user) must read them
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def make_readable(path: str | os.PathLike) -> Path:
    """chmod `path` 0644 (a folder: 0755, and everything under it likewise); returns it.

    safetensors and tempfile write 0600 files and 0700 folders: an A1111, ComfyUI or web server running as
    another user could not read the weights we hand them.
    """
    path = Path(path)
    if path.is_dir():
        for root, dirs, names in os.walk(path):
            os.chmod(root, 0o755)
            for name in names:
                os.chmod(os.path.join(root, name), 0o644)
    else:
        os.chmod(path, 0o644)
    return path
