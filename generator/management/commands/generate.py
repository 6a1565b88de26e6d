"""manage.py generate: make images from the command line with the same engine as the website.

Thin shell over generator.engine. Bad input fails fast with one line on stderr and writes nothing:
parameters are validated before any model loads, and the output folder is created (and files
moved into it atomically) only after every image has been generated.
"""
import dataclasses
import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from generator.engine.files import write_atomic
from generator.engine.params import SCHEDULER_NAMES, GenerationParams, Limits, ParamError
from generator.management.loading import load_for_command

MODEL_FILE_SUFFIXES = (".safetensors", ".ckpt", ".bin", ".pt", ".pth")


def looks_like_path(value: str) -> bool:
    """A --model value that is a path or hub id (no database needed) rather than a registry name."""
    return "/" in value or os.sep in value or value.endswith(MODEL_FILE_SUFFIXES) or os.path.exists(value)


def registry_model(name: str | None):
    """(source, lora, lora_scale, display name) for a registry name, or for the default model."""
    from django.db import DatabaseError

    from generator.models import AIModel

    try:
        if name:
            entry = AIModel.objects.select_related("parent").filter(name=name).first()
            if entry is None:
                raise CommandError(
                    f"model {name!r} not found: not a registered name, file or folder; "
                    "list names in the admin or register it with manage.py add_model"
                )
        else:
            entry = AIModel.objects.select_related("parent").filter(is_default=True).first()
            fallback = settings.RETROPORTAL_DEFAULT_MODEL
            if entry is None and fallback:
                if looks_like_path(fallback):
                    return fallback, None, 1.0, None
                return registry_model(fallback)
            if entry is None:
                return shipped_default()
    except DatabaseError as e:
        raise CommandError(f"cannot read the model registry ({' '.join(str(e).split())}); pass --model PATH instead") from e
    try:
        return (*entry.pipeline_spec(), entry.name)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def shipped_default():
    """A fresh clone with nothing registered generates with the shipped mini-world model (retro LoRA on base),
    found through the RETROPORTAL_FALLBACK_MODEL setting."""
    spec = import_string(settings.RETROPORTAL_FALLBACK_MODEL)() if settings.RETROPORTAL_FALLBACK_MODEL else None
    if spec is None:
        raise CommandError("no --model given and no default model registered; pass --model PATH_OR_NAME "
                           "or run manage.py add_model --default")
    return spec["base"], spec["lora"], spec["lora_scale"], spec["name"]


def free_name(folder: Path, seed: int, taken: set[str]) -> str:
    """`<seed>.png`, or `<seed>-2.png`, `-3`, ... when that file already exists (never overwrite)."""
    name, n = f"{seed}.png", 1
    while name in taken or (folder / name).exists():
        n += 1
        name = f"{seed}-{n}.png"
    taken.add(name)
    return name


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


class Command(BaseCommand):
    help = "Generate images with a model (path, hub id or registry name) and save PNGs with A1111 metadata."
    requires_system_checks = []  # a CLI run must not need (or touch) the database unless it reads the registry

    def add_arguments(self, parser):
        parser.add_argument("--model", help="folder, .safetensors file, hub id (org/repo) or registry name; default: the default model")
        parser.add_argument("--prompt", required=True)
        parser.add_argument("--negative-prompt", default="")
        parser.add_argument("--seed", type=int, default=-1, help="-1 picks a random seed; image i uses seed + i")
        parser.add_argument("--steps", type=int, default=20)
        parser.add_argument("--guidance-scale", type=float, default=7.0)
        parser.add_argument("--width", type=int, help="default: the model's native size (64 px mini-world, 512 SD 1.x)")
        parser.add_argument("--height", type=int, help="default: the model's native size")
        parser.add_argument("--num-images", type=int, default=1)
        parser.add_argument("--scheduler", default="dpmpp_2m", help=f"one of: {', '.join(SCHEDULER_NAMES)}")
        parser.add_argument("--out", required=True, help="output folder (created after a successful run)")
        parser.add_argument("--allow-pickle", action="store_true", help="allow .ckpt/.bin/.pt/.pth files (they can run code)")
        parser.add_argument("--lora", help="LoRA .safetensors to fuse into the model")
        parser.add_argument("--lora-scale", type=float, default=1.0)
        parser.add_argument("--config-dir", help="diffusers folder with the configs for a single-file checkpoint (offline)")
        parser.add_argument("--clip-model", help="open_clip spec to score each image (ARCH/PRETRAINED, hf-hub:…, local-dir:…)")

    def handle(self, *args, **options):
        params = GenerationParams(
            prompt=options["prompt"],
            negative_prompt=options["negative_prompt"],
            seed=options["seed"],
            steps=options["steps"],
            guidance_scale=options["guidance_scale"],
            width=_or(options["width"], 512),  # stand-ins until the model says its native size
            height=_or(options["height"], 512),
            num_images=options["num_images"],
            scheduler=options["scheduler"],
        )
        limits = Limits(**settings.RETROPORTAL_LIMITS)
        try:
            params.validate(limits)
        except ParamError as e:
            raise CommandError("; ".join(f"--{field.replace('_', '-')}: {message}"
                                         for field, messages in e.errors.items() for message in messages)) from e
        out = Path(options["out"])
        if out.exists() and not out.is_dir():
            raise CommandError(f"--out {out} exists and is not a folder")

        source, lora, lora_scale, name = self._resolve_model(options)
        scorer = self._load_clip(options["clip_model"])
        model = load_for_command(source, options, lora=lora, lora_scale=lora_scale, name=name)
        native = limits.side_within(model.native_size)
        params = dataclasses.replace(params, width=_or(options["width"], native), height=_or(options["height"], native))
        result = self._generate(model, params, limits)
        self._save(out, result, scorer, params.prompt)

    def _resolve_model(self, options):
        value, lora, lora_scale = options["model"], options["lora"], options["lora_scale"]
        if value and looks_like_path(value):
            return value, lora, lora_scale, None
        source, entry_lora, entry_scale, name = registry_model(value)
        if lora:  # an explicit --lora applies on top of the registry's base model
            return source, lora, lora_scale, name
        return source, entry_lora, entry_scale, name

    def _load_clip(self, spec):
        if not spec:
            return None
        from generator.engine.clipscore import ClipUnavailable, load_clip

        try:
            return load_clip(spec)
        except ClipUnavailable as e:
            raise CommandError(e.reason) from e

    def _generate(self, model, params, limits):
        from tqdm import tqdm

        from generator.engine.generate import generate

        with tqdm(total=params.steps * params.num_images, unit="step", file=sys.stderr) as bar:
            def on_step(done, total):
                bar.update(done - bar.n)

            result = generate(model, params, on_step=on_step, limits=limits)
        for warning in result.warnings:
            self.stderr.write(f"warning: {warning}")
        return result

    def _save(self, out: Path, result, scorer, prompt: str):
        scores = scorer.score([p.image for p in result.pictures], [prompt]) if scorer else [None] * len(result.pictures)
        out.mkdir(parents=True, exist_ok=True)
        taken: set[str] = set()
        for picture, score in zip(result.pictures, scores):
            path = write_atomic(out / free_name(out, picture.seed, taken), picture.png)
            line = f"{path}\tseed={picture.seed}"
            if score is not None:
                line += f"\tclip={score:.4f}"
            self.stdout.write(line)
