"""Benchmark: what the engine's generate() costs on top of a bare pipe(...) call (target <= 1.05x).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/generate_overhead.py [--steps 20 --size 64 --rounds 5]

Same loaded pipeline (the shipped mini-world base, else the tiny SD 1.x), same scheduler, prompt, seed,
steps, size and guidance. (bare) the sibling pipeline with the job's scheduler, called with the prompt
text and a seeded generator. (engine) generator.engine.generate.generate(): it builds that sibling per
call, encodes the prompt in 75-token chunks, calls back after every step (progress + cancel check, as
the worker's callbacks do) and writes the PNG with its A1111 infotext. Alternating bare/engine in one
process; the median over rounds of CPU time (one thread) and of wall time.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def load():
    from generator.engine.loading import load_pipeline
    from training.miniworld.shipped import BASE

    if (BASE / "model_index.json").exists():
        return load_pipeline(str(BASE), device="cpu", dtype=torch.float32)
    import tempfile

    from generator.engine.tiny import save_tiny_model

    return load_pipeline(str(save_tiny_model("sd1", Path(tempfile.mkdtemp()) / "sd1")), device="cpu")


def timed(fn) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def main():
    from generator.engine.generate import generate, with_scheduler
    from generator.engine.params import GenerationParams
    from generator.engine.schedulers import make_scheduler

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = load()
    params = GenerationParams(prompt="retro anime style, an old man with glasses in a market", seed=7,
                              steps=args.steps, width=args.size, height=args.size)
    bare_pipe = with_scheduler(model.pipeline, make_scheduler(params.scheduler, model.pipeline.scheduler.config))

    def bare():
        with torch.inference_mode():
            bare_pipe(prompt=params.prompt, negative_prompt=params.negative_prompt or None,
                      num_inference_steps=params.steps, guidance_scale=params.guidance_scale, width=params.width,
                      height=params.height, generator=torch.Generator("cpu").manual_seed(params.seed))

    progress = []
    engine = lambda: generate(model, params, on_step=lambda k, n: progress.append(k),  # noqa: E731
                              should_cancel=lambda: False)
    bare(), engine()  # warm-up
    times = {"bare": [], "engine": []}
    for _ in range(args.rounds):
        times["bare"].append(timed(bare))
        times["engine"].append(timed(engine))
    (bare_cpu, bare_wall), (eng_cpu, eng_wall) = (
        tuple(statistics.median(t[i] for t in times[k]) for i in (0, 1)) for k in ("bare", "engine"))
    cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    print(f"machine: {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} thread(s), "
          f"load average {os.getloadavg()[0]:.1f}; model {model.name}, {args.size} px, {args.steps} steps, "
          f"{params.scheduler}, CFG {params.guidance_scale:g}, {args.rounds} rounds\n")
    print("| call | CPU s/image | wall s/image |\n|---|---|---|")
    print(f"| bare pipe(...) | {bare_cpu:.4f} | {bare_wall:.4f} |")
    print(f"| engine generate() | {eng_cpu:.4f} | {eng_wall:.4f} |")
    print(f"| ratio engine / bare | **{eng_cpu / bare_cpu:.3f}x** | {eng_wall / bare_wall:.3f}x |")


if __name__ == "__main__":
    main()
