"""Throughput of dataset preparation: 200 ordinary 1024-px JPEGs to 512-px crops.

Prints images/s serially (1 worker) and with a thread pool of one worker per usable core, measured in the
same run on the same files (interleaved, best of two), their ratio, and checks that both give byte-identical output.
Target: >= 15 images/s on a 2-core machine. Run: .venv/bin/python benchmarks/prepare_dataset.py [N]
"""
import hashlib
import io
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from training.dataprep import PrepConfig, prepare  # noqa: E402
from training.dataprep.pipeline import usable_cpus  # noqa: E402


ROUNDS = 2


def textured_jpeg(seed: int, size: int = 1024) -> bytes:
    """Smooth colour regions plus grain: JPEG sizes like scanned artwork (~200-400 KB), not flat fills."""
    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8), "RGB").resize((size, size), Image.BICUBIC)
    pixels = np.asarray(base, dtype=np.int16) + rng.integers(-20, 21, (size, size, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def cpu_seconds() -> float:
    """CPU time of this process (all its threads) and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(source: Path, target: Path, workers: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one preparation."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    prepare(source, target, PrepConfig(resolution=512, mode="crop", instance_prompt="sks", workers=workers))
    return time.perf_counter() - wall, cpu_seconds() - cpu


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    cores = usable_cpus()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp, "originals")
        source.mkdir()
        for i in range(count):
            source.joinpath(f"scan {i:03d}.jpg").write_bytes(textured_jpeg(i))
        mean_kb = sum(p.stat().st_size for p in source.iterdir()) / count / 1024
        load_before = os.getloadavg()[0]
        # Interleaved, best of ROUNDS: other work on a shared machine hits both modes alike.
        runs = {1: [], cores: []}
        for _ in range(ROUNDS):
            for workers in runs:
                runs[workers].append(timed(source, Path(tmp, f"out-{workers}"), workers))
        single, single_cpu = min(runs[1])
        pooled, pooled_cpu = min(runs[cores])
        load_after = os.getloadavg()[0]
        identical = tree_digest(Path(tmp, "out-1")) == tree_digest(Path(tmp, f"out-{cores}"))
    print(f"machine: {cpu_name()}, {cores} usable cores, {platform.system()} {platform.machine()}, "
          f"Python {platform.python_version()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"load average (1 min) before/after: {load_before:.1f}/{load_after:.1f} (other work on the machine slows the wall times)")
    print(f"input: {count} JPEGs 1024x1024, mean {mean_kb:.0f} KB -> 512x512 crop PNG")
    print(f"serial (1)     : {count / single:6.1f} images/s wall ({single:.1f} s), {single_cpu / count * 1000:.0f} ms CPU per image")
    print(f"thread pool ({cores}): {count / pooled:6.1f} images/s wall ({pooled:.1f} s), {pooled_cpu / count * 1000:.0f} ms CPU per image")
    print(f"pool / single  : {single / pooled:.2f}x wall; outputs byte-identical: {identical}")
    capacity = cores * count / pooled_cpu
    print(f"CPU-bound rate on {cores} idle cores (pool): {capacity:.1f} images/s")
    wall_verdict = "met" if count / pooled >= 15 else "not met"
    cpu_verdict = "met" if capacity >= 15 else "not met"
    print(f"target >= 15 images/s: {wall_verdict} in wall time here; {cpu_verdict} on idle cores by CPU time")


if __name__ == "__main__":
    main()
