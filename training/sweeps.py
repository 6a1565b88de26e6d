"""Sweeps: a grid of TrainingRuns from one TOML file, trained, evaluated and compared (manage.py sweep).

    name = "retro"                # run names: retro-n20-s400-l2sp …
    base_model = "sd21"           # registered model (AIModel name)
    dataset = "retro50"           # a ready Dataset
    method = "lora"               # optional (default lora)
    checkpoints = "last"          # which checkpoints each run evaluates: last | all
    regularization_weight = 1e-4  # strength of "l2sp" / "l2" in the grid

    [base]                        # TrainConfig settings of every run
    resolution = 512
    checkpoint_steps = 100

    [grid]                        # every combination becomes one run
    dataset_size = [10, 20]       # the first N prepared pictures (a derived dataset '<dataset>-first<N>')
    max_steps = [200, 400]        # any TrainConfig key
    regularization = ["none", "l2sp"]   # none | l2sp | l2 | prior (prior preservation with the dataset's class prompt)

    [evaluation]                  # training.run_evaluations settings (images_per_prompt, steps, prompt_keys, …)
    images_per_prompt = 2

Resumable: a run that exists is never trained again when done ('skip'), resumed when cancelled,
interrupted or failed, waited for when queued or running. Evaluations already done with the same
settings are not queued again.
"""
import itertools
import json
import re
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from training import run_evaluations, runs
from training.models import Dataset, DatasetImage, TrainingRun

GRID_SPECIAL = ("dataset_size", "regularization")
REGULARIZATIONS = ("none", "l2sp", "l2", "prior")
SHORT = {"dataset_size": "n", "max_steps": "s", "regularization": "", "learning_rate": "lr", "rank": "r"}
TOP_KEYS = {"name", "base_model", "dataset", "method", "checkpoints", "regularization_weight", "base", "grid",
            "evaluation"}


class SweepError(ValueError):
    """The sweep file is invalid; the message names the key."""


@dataclass
class SweepRun:
    name: str
    values: dict  # the grid values of this combination
    config: dict  # TrainConfig settings
    dataset_size: int | None = None


@dataclass
class Sweep:
    name: str
    base_model: object
    dataset: Dataset
    method: str
    checkpoints: str
    grid_keys: list[str]
    runs: list[SweepRun] = field(default_factory=list)
    evaluation: dict = field(default_factory=dict)


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]+", "-", text.lower())).strip("-")


def load_sweep(path: str | Path) -> Sweep:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SweepError("no such file") from None
    return parse_sweep(text, path.stem)


def parse_sweep(text: str, default_name: str = "sweep") -> Sweep:
    """A Sweep from TOML text (named by its 'name' key, else default_name); SweepError naming the key."""
    from generator.models import AIModel
    from training.dreambooth.config import FIELDS

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"not valid TOML ({exc})") from None
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise SweepError(f"{', '.join(unknown)}: unknown key(s); valid: {', '.join(sorted(TOP_KEYS))}")
    name = _slug(str(data.get("name") or default_name))
    if not name:
        raise SweepError("name: must contain letters or digits")
    model = AIModel.objects.filter(name=data.get("base_model", "")).first()
    if model is None:
        raise SweepError(f"base_model: no registered model named {data.get('base_model')!r}")
    dataset = Dataset.objects.filter(name=data.get("dataset", "")).first()
    if dataset is None or dataset.status != Dataset.Status.DONE:
        raise SweepError(f"dataset: {data.get('dataset')!r} is not a ready dataset")
    base, grid = dict(data.get("base", {})), dict(data.get("grid", {}))
    for key in list(base) + list(grid):
        if key not in FIELDS and key not in GRID_SPECIAL or key in ("base_model", "dataset", "out", "resume"):
            raise SweepError(f"{key}: not a TrainConfig setting (nor dataset_size / regularization)")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"grid.{key}: must be a non-empty list")
    for value in grid.get("regularization", []):
        if value not in REGULARIZATIONS:
            raise SweepError(f"grid.regularization: {value!r} is not one of {', '.join(REGULARIZATIONS)}")
    for value in grid.get("dataset_size", []):
        if not isinstance(value, int) or value < 1:
            raise SweepError(f"grid.dataset_size: {value!r} is not a positive number of pictures")
    checkpoints = data.get("checkpoints", "last")
    if checkpoints not in ("last", "all"):
        raise SweepError(f"checkpoints: {checkpoints!r} must be last or all")
    weight = float(data.get("regularization_weight", 1e-4))
    sweep = Sweep(name, model, dataset, data.get("method", "lora"), checkpoints, list(grid),
                  evaluation=dict(data.get("evaluation", {})))
    keys = list(grid)
    for combo in itertools.product(*(grid[k] for k in keys)):
        values = dict(zip(keys, combo))
        config = {k: v for k, v in base.items() if k not in GRID_SPECIAL}
        config.update({k: v for k, v in values.items() if k not in GRID_SPECIAL})
        reg = values.get("regularization", base.get("regularization"))
        if reg is not None:
            config.update(l2sp_weight=weight if reg == "l2sp" else 0.0, l2_weight=weight if reg == "l2" else 0.0,
                          with_prior_preservation=reg == "prior")
            if reg == "prior" and not config.get("class_prompt"):
                config["class_prompt"] = dataset.class_prompt
        label = " ".join(f"{k}={v}" for k, v in values.items())
        config["training_comment"] = f"sweep {name}: {label}"
        run_name = _slug("-".join([name] + [f"{SHORT.get(k, _slug(k) + '-')}{v}" for k, v in values.items()]))[:100]
        sweep.runs.append(SweepRun(run_name, values, config, values.get("dataset_size", base.get("dataset_size"))))
    return sweep


def subset_dataset(dataset: Dataset, size: int | None) -> Dataset:
    """The dataset itself, or a ready derived dataset '<name>-first<N>' holding its first N prepared pictures."""
    if not size or size >= dataset.kept_count:
        return dataset
    name = f"{dataset.name}-first{size}"
    existing = Dataset.objects.filter(name=name).first()
    if existing is not None and existing.status == Dataset.Status.DONE:
        return existing
    keep = list(dataset.images.order_by("output_name")[:size])
    target = Path(dataset.root.parent / name / "prepared")
    shutil.rmtree(target, ignore_errors=True)
    (target / "images").mkdir(parents=True)
    for image in keep:
        src = dataset.prepared_dir / image.output_name
        shutil.copy2(src, target / image.output_name)
        if src.with_suffix(".txt").is_file():
            shutil.copy2(src.with_suffix(".txt"), (target / image.output_name).with_suffix(".txt"))
    manifest = dict(dataset.manifest or {})
    outputs = {image.output_name for image in keep}
    manifest["records"] = [r for r in manifest.get("records", []) if r.get("output") in outputs]
    manifest["counts"] = {**{k: 0 for k in (manifest.get("counts") or {})}, "kept": len(keep)}
    manifest["derived_from"] = {"dataset": dataset.name, "first": size}
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    with transaction.atomic():
        subset, _ = Dataset.objects.update_or_create(name=name, defaults=dict(
            instance_prompt=dataset.instance_prompt, class_prompt=dataset.class_prompt, resolution=dataset.resolution,
            mode=dataset.mode, min_size=dataset.min_size, status=Dataset.Status.DONE, manifest=manifest,
            kept_count=len(keep), caption_count=min(dataset.caption_count, len(keep)), prepared_at=dataset.prepared_at,
        ))
        subset.images.all().delete()
        DatasetImage.objects.bulk_create([
            DatasetImage(dataset=subset, output_name=i.output_name, source_name=i.source_name, caption=i.caption,
                         width=i.width, height=i.height, bucket=i.bucket, sha256=i.sha256) for i in keep
        ])
    return subset


def launch(sweep: Sweep, say) -> list[TrainingRun]:
    """Create/start, resume or skip every run of the sweep; returns the runs in grid order."""
    result = []
    for spec in sweep.runs:
        run = TrainingRun.objects.select_related("base_model", "dataset").filter(name=spec.name).first()
        if run is None:
            run = TrainingRun.objects.create(name=spec.name, dataset=subset_dataset(sweep.dataset, spec.dataset_size),
                                             base_model=sweep.base_model, method=sweep.method, config=spec.config)
            runs.start(run)
            say(f"start {run.name}")
        elif run.status == TrainingRun.Status.DONE:
            say(f"skip {run.name} (done)")
        elif run.is_active:
            say(f"wait {run.name} ({run.status})")
        elif run.allows("resume"):
            was = run.status
            runs.resume(run)
            say(f"resume {run.name} (was {was})")
        else:
            runs.start(run)
            say(f"start {run.name}")
        if run.config != spec.config and run.status != TrainingRun.Status.DRAFT:
            say(f"warning: {run.name} exists with other settings than the sweep file; kept as it is")
        result.append(run)
    return result


def wait_runs(sweep_runs: list[TrainingRun], timeout: float, interval: float = 1.0) -> list[TrainingRun]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        for run in sweep_runs:
            run.refresh_from_db()
            if run.is_active:
                runs.reconcile(run)
        if not any(run.is_active for run in sweep_runs):
            return sweep_runs
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs still training after {timeout:.0f}s; is a 'training' worker running?")
        time.sleep(interval)


def evaluate_all(sweep: Sweep, sweep_runs: list[TrainingRun], say) -> list:
    queued = []
    for run in sweep_runs:
        if run.status != TrainingRun.Status.DONE:
            continue
        try:
            new = run_evaluations.evaluate_run(run, sweep.checkpoints, None, sweep.evaluation)
        except run_evaluations.EvaluationRefused as exc:
            say(f"warning: {exc}")
            continue
        say(f"evaluate {run.name}: {len(new)} queued" if new else f"skip evaluation of {run.name} (done)")
        queued += new
    pending = run_evaluations.Evaluation.objects.filter(training_run__in=sweep_runs, status__in=run_evaluations.PENDING)
    return queued + [e for e in pending if e not in queued]


METRICS = ("clip_t", "clip_i", "dino", "near_copy_rate")


def table(sweep: Sweep, sweep_runs: list[TrainingRun]) -> list[dict]:
    rows = []
    for spec, run in zip(sweep.runs, sweep_runs):
        run.refresh_from_db()
        chosen = run_evaluations.chosen_evaluation(run)
        m = (chosen.overall if chosen else None) or {}
        rows.append({"run": run.name, **{k: spec.values.get(k) for k in sweep.grid_keys}, "status": run.status,
                     "checkpoint": chosen.checkpoint if chosen else "", "recommended": run.recommended_checkpoint,
                     **{k: m.get(k) for k in METRICS}})
    return rows


def format_table(rows: list[dict]) -> str:
    if not rows:
        return "(no runs)"
    cols = list(rows[0])

    def cell(v):
        return "–" if v is None or v == "" else (f"{v:.4f}" if isinstance(v, float) else str(v))

    widths = {c: max(len(c), *(len(cell(r[c])) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    lines += ["  ".join(cell(r[c]).ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(lines)
