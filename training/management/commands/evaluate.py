"""manage.py evaluate: score a model / LoRA / checkpoint on a prompt suite (thin shell over training.evaluation).

Writes OUT/images/*.png, OUT/metrics.json and OUT/report.html (self-contained). With --compare DIR …
it also writes OUT/comparison.html against earlier evaluation folders (checkpoints, in training order,
with the recommended one). With a path for --model it needs no database. Bad input fails with one
line before any model loads.
"""
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

DEFAULT_DINO = "facebook/dino-vits16"


class _LazyBar:
    """A tqdm bar over the suite's denoising steps, created at the first update."""

    def __init__(self, total: int):
        self.total, self.bar = total, None

    def update(self, done: int, _total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="step", file=sys.stderr, desc="evaluate")
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _overrides(o: dict) -> dict:
    """The EvalConfig settings given on the command line (None: EvalConfig's default, or the site's)."""
    from training.evaluation.config import EvalConfig

    values = {name: o.get(name) for name in EvalConfig.names() if name != "references"}
    values["negative_prompt"] = o["negative_prompt"] or None
    return values


class Command(BaseCommand):
    help = "Evaluate a model on a prompt suite: CLIP-T, CLIP-I, DINO, diversity, memorization, KID/FID; metrics.json + report.html."
    requires_system_checks = []  # a path needs no database

    def add_arguments(self, parser):
        parser.add_argument("--model", help="folder, .safetensors file, hub id or registry name")
        parser.add_argument("--run", help="a training run's name: queue one evaluation per checkpoint on the 'generation' "
                                          "queue (rows in the database, report in the admin); instead of --model")
        parser.add_argument("--checkpoints", choices=("all", "last"), default="all", help="with --run: which checkpoints")
        parser.add_argument("--no-base", action="store_true", help="with --run: skip the base model's evaluation "
                                                                   "(by default evaluated once with the same settings)")
        parser.add_argument("--wait", action="store_true", help="with --run: wait for the workers, print the metrics "
                                                               "and write OUT/report.html if --out is given")
        parser.add_argument("--lora", help="LoRA .safetensors (e.g. a run's pytorch_lora_weights.safetensors)")
        parser.add_argument("--lora-scale", type=float, default=1.0)
        parser.add_argument("--references", help="folder of the training/reference pictures (or a prepared dataset folder)")
        parser.add_argument("--prompts", help="suite file (.yaml/.json); default: training/evaluation/suites/retro_default.yaml "
                                              "(with --run also the name of a PromptSuite in the admin)")
        parser.add_argument("--prompt-keys", help="comma-separated concept keys to keep (default: all)")
        parser.add_argument("--languages", help="comma-separated languages to keep, e.g. en,id (default: all)")
        parser.add_argument("--images-per-prompt", type=int, default=None, help="default 2 (EvalConfig)")
        parser.add_argument("--steps", type=int, default=None, help="default 25 (EvalConfig)")
        parser.add_argument("--width", type=int, default=None, help="default: the base model's native size with --run, else 512")
        parser.add_argument("--height", type=int, default=None)
        parser.add_argument("--seed", type=int, default=None, help="image j of every prompt uses seed + j (default 1234)")
        parser.add_argument("--guidance-scale", type=float, default=None, help="default 7.0")
        parser.add_argument("--scheduler", default=None, help="default dpmpp_2m")
        parser.add_argument("--negative-prompt", default="")
        parser.add_argument("--clip-model", help="open_clip spec (ARCH/PRETRAINED, hf-hub:…, local-dir:…); default RETROPORTAL_CLIP_MODEL")
        parser.add_argument("--dino-model", default=None, help=f"hub id or local folder of a DINO ViT (default RETROPORTAL_DINO_MODEL, {DEFAULT_DINO}); 'none' skips DINO")
        parser.add_argument("--near-copy-threshold", type=float, default=None, help="max-similarity at or above which a picture is a near copy (default 0.9)")
        parser.add_argument("--name", help="display name in the report (default: model name + LoRA)")
        parser.add_argument("--compare", nargs="+", metavar="DIR", help="earlier evaluation folders to compare with (writes comparison.html)")
        parser.add_argument("--out", help="output folder (required with --model)")
        parser.add_argument("--allow-pickle", action="store_true")

    def handle(self, *args, **o):
        if o["run"]:
            if o["model"]:
                raise CommandError("--run and --model: give one of them")
            return self._handle_run(o)
        for flag in ("model", "references", "out"):
            if not o[flag]:
                raise CommandError(f"--{flag} is required (or --run RUN_NAME to evaluate a training run's checkpoints)")
        from generator.engine.loading import ModelLoadError
        from generator.engine.params import ParamError
        from training.evaluation.config import EvalConfig, EvalConfigError
        from training.evaluation.encoders import EncoderUnavailable
        from training.evaluation.evaluate import EvaluationError, EvaluationResult, evaluate
        from training.evaluation.prompt_suite import SuiteError, load_suite
        from training.evaluation.report import render_comparison, render_report, write_report

        out = Path(o["out"])
        if out.exists() and not out.is_dir():
            raise CommandError(f"--out {out} exists and is not a folder")
        try:
            suite = load_suite(o["prompts"])
            keys = [k.strip() for k in o["prompt_keys"].split(",") if k.strip()] if o["prompt_keys"] else None
            langs = [k.strip() for k in o["languages"].split(",") if k.strip()] if o["languages"] else None
            if keys or langs:
                suite = suite.subset(keys, langs)
                if not suite.prompts:
                    raise CommandError(f"--languages {o['languages']}: the suite has none of these (it has {', '.join(load_suite(o['prompts']).languages)})")
            earlier = {}
            for folder in o["compare"] or []:
                result = EvaluationResult.load(folder)
                earlier[result.name if result.name not in earlier else str(folder)] = result
            source, lora, lora_scale, name = self._resolve_model(o)
            config = EvalConfig.from_dict({**_overrides(o), "references": o["references"]}).resolved(
                None, settings.RETROPORTAL_CLIP_MODEL, getattr(settings, "RETROPORTAL_DINO_MODEL", DEFAULT_DINO))
            bar = _LazyBar(config.steps * config.images_per_prompt * len(suite.prompts))  # load errors print alone
            try:
                result = evaluate(source, config, suite, lora=lora, lora_scale=lora_scale, out_dir=out,
                                  on_progress=bar.update, name=o["name"] or name,
                                  allow_pickle=o["allow_pickle"] or getattr(settings, "RETROPORTAL_ALLOW_PICKLE", False))
            finally:
                bar.close()
        except ParamError as e:
            raise CommandError(f"--{e.field.replace('_', '-')}: {e.message}") from e
        except EvalConfigError as e:
            raise CommandError(f"--{e}") from e
        except (EvaluationError, SuiteError, EncoderUnavailable, ModelLoadError) as e:
            raise CommandError(str(e)) from e
        report = write_report(render_report(result), out / "report.html")
        for warning in result.warnings:
            self.stderr.write(f"warning: {warning}")
        m = result.overall
        self.stdout.write(
            "  ".join(f"{k}={m[k]:.4f}" for k in ("clip_t", "clip_i", "dino", "diversity", "near_copy_rate", "kid") if m.get(k) is not None)
        )
        self.stdout.write(f"{out / 'metrics.json'}\n{report}")
        if earlier:
            key = result.name if result.name not in earlier else str(out)
            comparison = write_report(render_comparison({**earlier, key: result}), out / "comparison.html")
            self.stdout.write(str(comparison))

    def _resolve_model(self, o):
        from generator.management.commands.generate import looks_like_path, registry_model

        if looks_like_path(o["model"]):
            return o["model"], o["lora"], o["lora_scale"], None
        choice = registry_model(o["model"])
        if o["lora"]:
            return choice.source, o["lora"], o["lora_scale"], choice.name
        return choice.source, choice.lora, choice.lora_scale, choice.name

    # -- --run: the Django layer (training.run_evaluations) ---------------------------------------------------
    def _handle_run(self, o):
        from training import run_evaluations
        from training.models import TrainingRun

        run = TrainingRun.objects.select_related("base_model", "dataset").filter(name=o["run"]).first()
        if run is None:
            raise CommandError(f"--run {o['run']}: no such training run")
        overrides = _overrides(o)
        if o["references"]:
            overrides["references"] = o["references"]
        try:
            suite = self._suite(o["prompts"])
            queued = run_evaluations.evaluate_run(run, o["checkpoints"], suite, overrides, include_base=not o["no_base"])
        except run_evaluations.EvaluationRefused as e:
            raise CommandError(str(e)) from e
        for ev in queued:
            self.stdout.write(f"queued {ev.name} (evaluation {ev.pk})")
        if not queued:
            self.stdout.write(f"skip {run.name}: every selected checkpoint is already evaluated with these settings")
        if not o["wait"]:
            return
        try:
            rows = run_evaluations.wait(queued or [], timeout=24 * 3600)
        except TimeoutError as e:
            raise CommandError(str(e)) from e
        for ev in rows:
            if ev.status == ev.Status.FAILED:
                self.stderr.write(f"{ev.name}: failed: {ev.error}")
        run.refresh_from_db()
        for ev in run_evaluations.latest_per_checkpoint(run):
            m = ev.overall or {}
            self.stdout.write(f"{ev.checkpoint}: " + "  ".join(
                f"{k}={m[k]:.4f}" for k in ("clip_t", "clip_i", "dino", "near_copy_rate") if m.get(k) is not None))
        self.stdout.write(f"recommended: {run.recommended_checkpoint or 'none'} ({run.recommendation_reason})")
        if o["out"]:
            from training.evaluation.report import write_report

            self.stdout.write(str(write_report(run_evaluations.run_report_html(run), Path(o["out"]) / "report.html")))

    def _suite(self, value):
        from django.core.exceptions import ValidationError

        from training.models import PromptSuite

        if not value:
            return None
        suite = PromptSuite.objects.filter(name=value).first()
        if suite is not None:
            return suite
        path = Path(value)
        if not path.is_file():
            raise CommandError(f"--prompts {value}: neither a PromptSuite name nor a file")
        suite = PromptSuite.objects.filter(name=path.stem).first() or PromptSuite(name=path.stem)
        suite.text = path.read_text(encoding="utf-8")
        try:
            suite.save()
        except ValidationError as e:
            raise CommandError(f"--prompts {value}: {'; '.join(e.messages)}") from e
        return suite
