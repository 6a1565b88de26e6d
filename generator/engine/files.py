"""Publishing a folder all at once: readers see the old folder or the new one, never half of one."""
import os
import shutil
from pathlib import Path


def publish_dir(tmp_dir: str | os.PathLike, out_dir: Path) -> Path:
    """Move the fully written `tmp_dir` (on the same file system) to `out_dir`, replacing what was there."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        old = out_dir.with_name(out_dir.name + ".old-" + os.path.basename(tmp_dir))
        os.replace(out_dir, old)
        os.replace(tmp_dir, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp_dir, out_dir)
    return out_dir
