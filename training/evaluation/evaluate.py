"""Evaluate a model (base, fine-tune, LoRA or checkpoint) on a prompt suite with fixed seeds.

`evaluate(...)` generates every suite prompt `images_per_prompt` times through the engine (image j of
EVERY prompt uses seed + j, so two models, or the two languages of one concept, are compared on the
same initial noise), embeds the pictures with CLIP (and DINO), and computes every metric of
`metrics.py` per image, per prompt, per language, per split (seen / held-out) and overall. With
`out_dir` it writes `images/<concept>.<lang>-<seed>.png` (A1111 metadata included) and then
`metrics.json`, each through a temp file + os.replace: a `metrics.json` present means a finished run.

`EvaluationResult.as_dict()` is exactly metrics.json, flat enough for a Django `Evaluation` row
(`overall` keys as columns or a JSONField) with one row per entry of `images`.

`recommend_checkpoint(results)` picks the checkpoint to ship; see its docstring for the rule.
"""
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from generator.engine.files import write_atomic

from . import metrics as M
from .config import EvalConfig, EvalConfigError
from .prompt_suite import Suite, load_suite

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# Metrics of every group, in report order. Higher is better except max_train_sim, near_copy_rate,
# kid and fid; diversity is neither (0 = one picture repeated; very high = prompt ignored).
METRIC_KEYS = ("clip_t", "clip_score", "clip_i", "dino", "diversity", "max_train_sim", "near_copy_rate", "kid", "fid")
RESULT_VERSION = 1
CLIP_I_MARGIN = 0.02
MAX_NEAR_COPY_RATE = 0.05


class EvaluationError(ValueError):
    """Bad evaluation input (references, sizes, results); the message is one line naming the flag."""


@dataclass
class ImageRow:
    prompt_id: str  # <concept key>.<language>
    prompt_key: str
    language: str
    prompt: str
    held_out: bool
    seed: int
    file: str | None  # relative to out_dir (None when nothing was written)
    clip_t: float
    clip_score: float
    clip_i: float
    dino: float | None
    max_train_sim: float
    near_copy: bool


@dataclass
class EvaluationResult:
    name: str
    model: str
    lora: str | None
    settings: dict
    overall: dict
    by_prompt: dict = field(default_factory=dict)
    by_language: dict = field(default_factory=dict)
    by_split: dict = field(default_factory=dict)
    images: list[ImageRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    out_dir: str | None = None

    @property
    def metrics(self) -> dict:
        """The overall metrics (what `recommend_checkpoint` compares)."""
        return self.overall

    def as_dict(self) -> dict:
        data = asdict(self)
        data["version"] = RESULT_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "EvaluationResult":
        data = dict(data)
        data.pop("version", None)
        data["images"] = [ImageRow(**row) for row in data.get("images", [])]
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> "EvaluationResult":
        """Read a metrics.json (or the folder holding one)."""
        path = Path(path)
        if path.is_dir():
            path = path / "metrics.json"
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as e:
            raise EvaluationError(f"{path}: not a readable metrics.json ({' '.join(str(e).split())})") from e


def find_references(folder: str | Path) -> list[Path]:
    """Image files of a reference/training folder: a prepared dataset's images/ (training.dataprep
    layout, next to manifest.json) or the image files directly in the folder, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EvaluationError(f"--references {folder}: no such folder")
    if (folder / "images").is_dir() and (folder / "manifest.json").is_file():
        folder = folder / "images"
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise EvaluationError(f"--references {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in it; point it at the training pictures")
    return files


def load_images(paths: list[Path]):
    from PIL import Image, ImageOps

    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                images.append(ImageOps.exif_transpose(image).convert("RGB"))
        except Exception as e:
            raise EvaluationError(f"--references: cannot read {path} ({' '.join(str(e).split())})") from e
    return images


def _mean(values) -> float | None:
    values = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return sum(values) / len(values) if values else None


@dataclass
class _Embedded:
    """Everything the aggregation needs, one row per generated image."""

    clip: torch.Tensor  # generated CLIP image embeddings [N, D]
    clip_refs: torch.Tensor
    clip_t: torch.Tensor
    clip_score: torch.Tensor
    clip_i: torch.Tensor
    dino: torch.Tensor | None
    max_sim: torch.Tensor
    near: torch.Tensor  # bool [N]


def _aggregate(e: _Embedded, index: list[int], groups: dict[str, list[int]], with_sets: bool) -> dict:
    """Metrics of the images `index`; `groups` (prompt -> rows) decides diversity; KID/FID if with_sets."""
    idx = torch.tensor(index, dtype=torch.long)
    out = {
        "n_images": len(index),
        "clip_t": _mean(e.clip_t[idx]),
        "clip_score": _mean(e.clip_score[idx]),
        "clip_i": _mean(e.clip_i[idx]),
        "dino": _mean(e.dino[idx]) if e.dino is not None else None,
        "diversity": _mean(M.diversity(e.clip[torch.tensor(rows)]) for rows in groups.values()),
        "max_train_sim": _mean(e.max_sim[idx]),
        "near_copy_rate": _mean(e.near[idx].double()),
        "kid": None,
        "fid": None,
    }
    if with_sets and len(index) >= 2 and e.clip_refs.shape[0] >= 2:
        out["kid"] = float(M.kid(e.clip[idx], e.clip_refs))
        try:
            out["fid"] = float(M.fid(e.clip[idx], e.clip_refs))
        except ImportError:  # torchmetrics missing: FID is optional
            pass
    return out


def evaluate(
    model_source: str,
    config: EvalConfig,
    suite: Suite | str | Path | None = None,
    *,
    lora: str | None = None,
    lora_scale: float = 1.0,
    out_dir: str | Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    name: str | None = None,
    model=None,
    clip_encoder=None,
    dino_encoder=None,
    allow_pickle: bool = False,
) -> EvaluationResult:
    """Generate `suite` with the config's fixed seeds, embed, and compute every metric (module docstring).

    `config` is resolved (EvalConfig.resolved: sizes and CLIP set; dino_model None measures memorization
    in CLIP space) and names the references folder. suite: a Suite, a suite file path, or None for the
    default retro suite. on_progress(done, total) counts denoising steps over the whole suite. For a sweep
    over checkpoints pass the already-loaded `model` (LoadedModel), `clip_encoder` and `dino_encoder`.
    Raises EvaluationError, SuiteError, EncoderUnavailable, ParamError or ModelLoadError, all with
    one-line messages, before any image is generated when the inputs are bad.
    """
    from .encoders import load_clip_encoder, load_dino_encoder

    suite = suite if isinstance(suite, Suite) else load_suite(suite)
    try:
        config.validate()
    except EvalConfigError as exc:
        raise EvaluationError(f"--{exc}") from None
    if config.references is None or config.width is None or config.clip_model is None:
        raise EvaluationError("evaluate() needs a resolved EvalConfig (references, size and CLIP model set)")
    base = _params(config)
    references = load_images(find_references(config.references))
    clip_encoder = clip_encoder or load_clip_encoder(config.clip_model)
    if dino_encoder is None and config.dino_model:
        dino_encoder = load_dino_encoder(config.dino_model)
    if model is None:
        from generator.engine.loading import load_pipeline

        model = load_pipeline(model_source, lora=lora, lora_scale=lora_scale, allow_pickle=allow_pickle)
    out = Path(out_dir) if out_dir is not None else None
    rows_meta, pictures, warnings = _generate(model, suite, config, base, out, on_progress)
    e = _embed(pictures, references, [p.text for p, _, _ in rows_meta], clip_encoder, dino_encoder,
               config.near_copy_threshold)
    images = [
        ImageRow(
            prompt_id=p.id, prompt_key=p.key, language=p.language, prompt=p.text, held_out=p.held_out, seed=s, file=f,
            clip_t=float(e.clip_t[i]), clip_score=float(e.clip_score[i]), clip_i=float(e.clip_i[i]),
            dino=float(e.dino[i]) if e.dino is not None else None, max_train_sim=float(e.max_sim[i]), near_copy=bool(e.near[i]),
        )
        for i, (p, s, f) in enumerate(rows_meta)
    ]
    overall, by_prompt, by_language, by_split = _aggregate_groups(e, images, suite.languages)
    if len(references) < 2 or len(images) < 2:
        warnings.append("KID/FID need at least 2 generated and 2 reference images; left empty")
    settings = {
        "suite": suite.name, "suite_version": suite.version, "languages": suite.languages,
        "prompts": len(suite.prompts), "images_per_prompt": config.images_per_prompt, "steps": config.steps,
        "width": config.width, "height": config.height, "seed": config.seed, "guidance_scale": config.guidance_scale,
        "scheduler": config.scheduler, "negative_prompt": config.negative_prompt,
        "clip_model": getattr(clip_encoder, "spec", config.clip_model),
        "dino_model": getattr(dino_encoder, "spec", config.dino_model) if dino_encoder is not None else None,
        "memorization_space": "dino" if e.dino is not None else "clip",
        "memorization_threshold": config.near_copy_threshold, "kid_fid_space": "clip",
        "references": str(config.references), "n_references": len(references),
        "model_hash": getattr(model, "model_hash", None), "lora_scale": lora_scale,
    }
    lora = lora if lora is not None else getattr(model, "lora", None)
    display = name or (f"{getattr(model, 'name', Path(str(model_source)).name)}" + (f" + {Path(lora).stem}" if lora else ""))
    evaluation = EvaluationResult(
        name=display, model=str(model_source), lora=str(lora) if lora else None, settings=settings, overall=overall,
        by_prompt=by_prompt, by_language=by_language, by_split=by_split, images=images, warnings=warnings,
        out_dir=str(out) if out is not None else None,
    )
    if out is not None:
        write_atomic(out / "metrics.json", json.dumps(evaluation.as_dict(), indent=2, ensure_ascii=False).encode("utf-8"))
    return evaluation


def _params(config: EvalConfig):
    """The generation parameters every prompt shares (validated against limits that fit the config)."""
    from generator.engine.params import GenerationParams, Limits

    limits = Limits(max_width=max(config.width, 1024), max_height=max(config.height, 1024),
                    max_steps=max(config.steps, 100), max_images=max(config.images_per_prompt, 4))
    base = GenerationParams(prompt="x", negative_prompt=config.negative_prompt, seed=config.seed, steps=config.steps,
                            guidance_scale=config.guidance_scale, width=config.width, height=config.height,
                            num_images=config.images_per_prompt, scheduler=config.scheduler)
    base.validate(limits)
    return base, limits


def _generate(model, suite: Suite, config: EvalConfig, base, out: Path | None, on_progress):
    """Step 1: every prompt's pictures with the shared seeds; [(prompt, seed, file)], [PIL image], warnings."""
    from generator.engine.generate import generate
    from generator.engine.params import GenerationParams

    params0, limits = base
    if out is not None:
        (out / "images").mkdir(parents=True, exist_ok=True)
    total = config.steps * config.images_per_prompt * len(suite.prompts)
    rows_meta, pictures, warnings = [], [], list(suite.warnings)
    for n, prompt in enumerate(suite.prompts):
        params = GenerationParams(**{**params0.as_dict(), "prompt": prompt.text})
        offset = n * config.steps * config.images_per_prompt
        progress = (lambda k, _t, offset=offset: on_progress(offset + k, total)) if on_progress else None
        result = generate(model, params, on_step=progress, limits=limits)
        warnings += [f"{prompt.id}: {w}" for w in result.warnings if f"{prompt.id}: {w}" not in warnings]
        for picture in result.pictures:
            file = None
            if out is not None:
                file = f"images/{prompt.id}-{picture.seed}.png"
                write_atomic(out / file, picture.png)
            rows_meta.append((prompt, picture.seed, file))
            pictures.append(picture.image)
    return rows_meta, pictures, warnings


def _embed(pictures, references, texts: list[str], clip_encoder, dino_encoder, threshold: float) -> _Embedded:
    """Step 2: generated pictures and references through the same encoders; per-picture scores."""
    gen_clip = clip_encoder.embed_images(pictures).cpu()
    ref_clip = clip_encoder.embed_images(references).cpu()
    text_clip = clip_encoder.embed_texts(texts).cpu()
    gen_dino = ref_dino = None
    if dino_encoder is not None:
        gen_dino = dino_encoder.embed_images(pictures).cpu()
        ref_dino = dino_encoder.embed_images(references).cpu()
    max_sim, _ = M.memorization(gen_dino if gen_dino is not None else gen_clip,
                                ref_dino if ref_dino is not None else ref_clip, threshold)
    return _Embedded(
        clip=gen_clip, clip_refs=ref_clip, clip_t=M.clip_t(gen_clip, text_clip),
        clip_score=M.clip_score(gen_clip, text_clip), clip_i=M.clip_i(gen_clip, ref_clip),
        dino=M.dino(gen_dino, ref_dino) if gen_dino is not None else None, max_sim=max_sim, near=max_sim >= threshold,
    )


def _aggregate_groups(e: _Embedded, images: list[ImageRow], languages: list[str]):
    """Step 3: (overall, by prompt, by language, by split) metrics."""
    def groups_of(index):
        groups: dict[str, list[int]] = {}
        for i in index:
            groups.setdefault(images[i].prompt_id, []).append(i)
        return groups

    everything = list(range(len(images)))
    by_prompt = {pid: _aggregate(e, rows, {pid: rows}, with_sets=False) for pid, rows in groups_of(everything).items()}
    by_language = {}
    for lang in languages:
        index = [i for i, row in enumerate(images) if row.language == lang]
        if index:
            by_language[lang] = _aggregate(e, index, groups_of(index), with_sets=True)
    by_split = {}
    for split, flag in (("seen", False), ("held_out", True)):
        index = [i for i, row in enumerate(images) if row.held_out == flag]
        if index:
            by_split[split] = _aggregate(e, index, groups_of(index), with_sets=True)
    return _aggregate(e, everything, groups_of(everything), with_sets=True), by_prompt, by_language, by_split


def _metric(name: str, metrics, key: str) -> float:
    data = metrics.metrics if isinstance(metrics, EvaluationResult) else metrics
    value = data.get(key) if isinstance(data, dict) else None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise EvaluationError(f"checkpoint {name!r} has no {key!r} metric; evaluate it with a CLIP model and references")
    return float(value)


def recommend_checkpoint(
    results: dict,
    *,
    max_near_copy_rate: float = MAX_NEAR_COPY_RATE,
    clip_i_margin: float = CLIP_I_MARGIN,
) -> tuple[str | None, str]:
    """(name, reason): the checkpoint to ship, or (None, reason) when none qualifies.

    results maps a name (e.g. 'checkpoint-500') to its overall metrics dict or EvaluationResult,
    in training order. The rule:
      1. eligible = near_copy_rate strictly below `max_near_copy_rate` (default 0.05: fewer than 1
         generated picture in 20 is a near copy of a training picture);
      2. among those, keep the ones whose CLIP-I is within `clip_i_margin` (default 0.02, inclusive)
         of the best eligible CLIP-I — still faithful to the training style/subject. The best is
         taken among eligible checkpoints only: memorising inflates CLIP-I, so a copying checkpoint
         must not set the bar;
      3. pick the highest CLIP-T (prompt fidelity: the fine-tune still follows the prompt).
         Ties (within 1e-9) go to the higher CLIP-I, then to the earlier entry of `results`
         (an earlier checkpoint has drifted less from the base model).
    """
    if not results:
        raise EvaluationError("no results to compare")
    tol = 1e-9
    rows = [(name, _metric(name, m, "near_copy_rate"), _metric(name, m, "clip_i"), _metric(name, m, "clip_t"))
            for name, m in results.items()]
    eligible = [r for r in rows if r[1] < max_near_copy_rate]
    excluded = [f"{n} (near-copy rate {rate:.1%})" for n, rate, _, _ in rows if rate >= max_near_copy_rate]
    if not eligible:
        return None, (f"no checkpoint qualifies: every one has a near-copy rate of at least {max_near_copy_rate:.1%} "
                      f"({', '.join(excluded)}); train for fewer steps, add prior preservation or more pictures")
    best_clip_i = max(r[2] for r in eligible)
    close = [r for r in eligible if r[2] >= best_clip_i - clip_i_margin - tol]
    kept = {r[0] for r in close}
    excluded += [f"{n} (CLIP-I {ci:.3f} < {best_clip_i - clip_i_margin:.3f})" for n, _, ci, _ in eligible if n not in kept]
    winner = close[0]
    for r in close[1:]:
        if r[3] > winner[3] + tol or (abs(r[3] - winner[3]) <= tol and r[2] > winner[2] + tol):
            winner = r
    name, rate, ci, ct = winner
    reason = (f"{name}: highest CLIP-T ({ct:.4f}) among the {len(close)} of {len(rows)} checkpoints with a near-copy rate "
              f"below {max_near_copy_rate:.1%} and CLIP-I within {clip_i_margin} of the best ({best_clip_i:.4f}); "
              f"its CLIP-I {ci:.4f}, near-copy rate {rate:.1%}")
    if excluded:
        reason += "; excluded: " + ", ".join(excluded)
    return name, reason

