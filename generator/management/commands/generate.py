"""manage.py generate: make images from the command line with the same engine as the website.

Thin shell over generator.engine. Bad input fails fast with one line on stderr and writes nothing:
parameters are validated before any model loads, and the output folder is created (and files
moved into it atomically) only after every image has been generated.
"""
import dataclasses
import os
import sys
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from generator.engine.files import write_atomic
from generator.engine.param_checks import HIRES_UPSCALERS
from generator.engine.params import SCHEDULER_NAMES, SITE_DEFAULTS, GenerationParams, Limits, ParamError
from generator.management.loading import load_for_command

SITE = SITE_DEFAULTS  # where neither a flag nor the model sets one
MODEL_FILE_SUFFIXES = (".safetensors", ".ckpt", ".bin", ".pt", ".pth")


def looks_like_path(value: str) -> bool:
    """A --model value that is a path or hub id (no database needed) rather than a registry name."""
    return "/" in value or os.sep in value or value.endswith(MODEL_FILE_SUFFIXES) or os.path.exists(value)


class ModelChoice(NamedTuple):
    """What --model resolved to: what to load, and the model's own steps and CFG (None: the site's)."""
    source: str
    lora: str | None
    lora_scale: float
    name: str | None
    steps: int | None = None
    guidance_scale: float | None = None


def registry_model(name: str | None) -> ModelChoice:
    """The model a registry name, or the default model, stands for."""
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
                    return ModelChoice(fallback, None, 1.0, None)
                return registry_model(fallback)
            if entry is None:
                return shipped_default()
    except DatabaseError as e:
        raise CommandError(f"cannot read the model registry ({' '.join(str(e).split())}); pass --model PATH instead") from e
    try:
        return ModelChoice(*entry.pipeline_spec(), entry.name, entry.default_steps, entry.default_guidance_scale)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def shipped_default():
    """A fresh clone with nothing registered generates with the shipped mini-world model (retro LoRA on base),
    found through the RETROPORTAL_FALLBACK_MODEL setting."""
    spec = import_string(settings.RETROPORTAL_FALLBACK_MODEL)() if settings.RETROPORTAL_FALLBACK_MODEL else None
    if spec is None:
        raise CommandError("no --model given and no default model registered; pass --model PATH_OR_NAME "
                           "or run manage.py add_model --default")
    return ModelChoice(spec["base"], spec["lora"], spec["lora_scale"], spec["name"], spec.get("steps"),
                       spec.get("guidance_scale"))


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


CREATIVE_OPTIONS = ("strength", "mask_blur", "hires_scale", "hires_steps", "hires_strength", "hires_upscaler",
                    "variation_seed", "variation_strength", "translate")


def flag(field: str) -> str:
    return field.replace("_", "-").rstrip("s") if field == "loras" else field.replace("_", "-")


def read_picture_file(path: str | None, field: str, limits: Limits, errors: dict):
    """The picture at the CLI user's own `path`, decoded with the site's checks; errors collected, not raised."""
    if not path:
        return None
    from generator.engine.pictures import read_picture

    try:
        data = Path(path).read_bytes()
    except OSError as e:
        errors.setdefault(field, []).append(f"cannot read {path} ({e.strerror or e}); give a PNG, JPEG or WebP file")
        return None
    try:
        return read_picture(data, field, limits)
    except ParamError as e:
        errors.setdefault(field, []).append(f"{path} {e.message}")
        return None


def parse_loras(values: list[str], default_scale: float, errors: dict) -> tuple:
    """--lora NAME[:SCALE] values as LoraChoice (NAME: registry name or file; SCALE: a number)."""
    from generator.engine.params import LoraChoice

    choices = []
    for value in values:
        name, _, scale = value.rpartition(":")
        try:
            choices.append(LoraChoice(name, float(scale)) if name else LoraChoice(value, default_scale))
        except ValueError:
            choices.append(LoraChoice(value, default_scale))  # a colon that is part of the path
    return tuple(choices)


def resolve_lora(choice):
    """A --lora NAME as its file: a path is itself; a registry name is its LoRA entry's source and base."""
    if looks_like_path(choice.name):
        if not Path(choice.name).exists():
            raise CommandError(f"--lora: {choice.name} does not exist; give a .safetensors LoRA or a registered name")
        return dataclasses.replace(choice, source=choice.name, name=Path(choice.name).stem)
    from django.db import DatabaseError

    from generator.models import AIModel

    try:
        entry = AIModel.objects.select_related("parent").filter(name=choice.name, kind=AIModel.Kind.LORA).first()
    except DatabaseError as e:
        raise CommandError(f"--lora: cannot read the model registry ({' '.join(str(e).split())}); "
                           "give the LoRA's file path instead") from e
    if entry is None:
        raise CommandError(f"--lora: {choice.name!r} is not a registered LoRA; give a .safetensors path or "
                           "register it with manage.py add_model")
    base = entry.base_architecture
    return dataclasses.replace(choice, source=entry.source, base_architecture=base or "")


def resolve_upscaler(value: str, limits: Limits) -> tuple[str, str | None, Limits]:
    """--hires-upscaler as (the name the infotext writes, its file or None, limits that know that name).

    Lanczos and Latent need no file; a path is its own file, named by its stem (as A1111 names upscaler
    files); anything else is a registry name (the database is read only then). An unknown name is left to
    GenerationParams, whose message lists the valid ones.
    """
    if value in HIRES_UPSCALERS:
        return value, None, limits
    if looks_like_path(value):
        path = Path(value).expanduser()
        if not path.is_file():
            raise CommandError(f"--hires-upscaler: {value} does not exist; give an upscaler .safetensors file, "
                               f"a registered upscaler name, or one of {', '.join(HIRES_UPSCALERS)}")
        return path.stem, str(path), dataclasses.replace(limits, upscalers=(*limits.upscalers, path.stem))
    from django.db import DatabaseError

    from generator.models import AIModel

    try:
        registered = dict(AIModel.objects.upscalers().values_list("name", "source"))
    except DatabaseError as e:
        raise CommandError(f"--hires-upscaler: cannot read the model registry ({' '.join(str(e).split())}); "
                           "give the upscaler's file path instead") from e
    return value, registered.get(value), dataclasses.replace(limits, upscalers=tuple(registered))


class Command(BaseCommand):
    help = "Generate images with a model (path, hub id or registry name) and save PNGs with A1111 metadata."
    requires_system_checks = []  # a CLI run must not need (or touch) the database unless it reads the registry

    def add_arguments(self, parser):
        parser.add_argument("--model", help="folder, .safetensors file, hub id (org/repo) or registry name; default: the default model")
        parser.add_argument("--prompt", required=True)
        parser.add_argument("--negative-prompt", default="")
        parser.add_argument("--seed", type=int, default=-1, help="-1 picks a random seed; image i uses seed + i")
        parser.add_argument("--steps", type=int, help=f"default: the model's (registry), else {SITE.steps}")
        parser.add_argument("--guidance-scale", type=float,
                            help=f"CFG scale; default: the model's (registry), else {SITE.guidance_scale:g}")
        parser.add_argument("--width", type=int, help="default: the model's native size (64 px mini-world, 512 SD 1.x)")
        parser.add_argument("--height", type=int, help="default: the model's native size")
        parser.add_argument("--num-images", type=int, default=1)
        parser.add_argument("--scheduler", default="dpmpp_2m", help=f"one of: {', '.join(SCHEDULER_NAMES)}")
        parser.add_argument("--out", required=True, help="output folder (created after a successful run)")
        parser.add_argument("--allow-pickle", action="store_true", help="allow .ckpt/.bin/.pt/.pth files (they can run code)")
        parser.add_argument("--lora", action="append", default=[], metavar="NAME[:SCALE]",
                            help="mix a LoRA (registered name or .safetensors path) at SCALE (-2..2, default "
                                 "--lora-scale); repeat for several")
        parser.add_argument("--lora-scale", type=float, default=1.0, help="scale of a --lora given without one")
        creative = parser.add_argument_group("image to image, inpainting, hires fix, variations, translation")
        creative.add_argument("--init-image", help="PNG/JPEG/WebP to start from (img2img; crop and resize to the size)")
        creative.add_argument("--strength", type=float, default=0.75, help="img2img denoising strength, 0 < s <= 1")
        creative.add_argument("--mask-image", help="inpainting mask (white = repaint), needs --init-image")
        creative.add_argument("--mask-blur", type=int, default=4, help="mask blur in pixels")
        creative.add_argument("--hires-scale", type=float, default=1.0, help="hires fix: final size = size x scale (1-4)")
        creative.add_argument("--hires-steps", type=int, default=0, help="hires pass steps (0 = --steps)")
        creative.add_argument("--hires-strength", type=float, default=0.5, help="hires pass denoising strength")
        creative.add_argument("--hires-upscaler", default="Lanczos", metavar="NAME_OR_PATH",
                              help="Lanczos, Latent, a registered upscaler or an upscaler file (.safetensors)")
        creative.add_argument("--variation-seed", type=int, default=-1, help="-1 = random when --variation-strength > 0")
        creative.add_argument("--variation-strength", type=float, default=0.0, help="0 (off) to 1")
        creative.add_argument("--translate", default="", help="'id': translate the prompt from Indonesian first "
                                                              "(RETROPORTAL_TRANSLATE_MODEL)")
        parser.add_argument("--config-dir", help="diffusers folder with the configs for a single-file checkpoint (offline)")
        parser.add_argument("--clip-model", help="open_clip spec to score each image (ARCH/PRETRAINED, hf-hub:…, local-dir:…)")

    def handle(self, *args, **options):
        limits = Limits(**settings.RETROPORTAL_LIMITS)
        upscaler_name, upscaler_file, limits = resolve_upscaler(options["hires_upscaler"], limits)
        errors: dict[str, list[str]] = {}
        pictures = {field: read_picture_file(options[field], field, limits, errors)
                    for field in ("init_image", "mask_image")}
        loras = parse_loras(options["lora"], options["lora_scale"], errors)
        params = GenerationParams(
            prompt=options["prompt"],
            negative_prompt=options["negative_prompt"],
            seed=options["seed"],
            steps=_or(options["steps"], SITE.steps),  # stand-ins until the model says its own defaults
            guidance_scale=_or(options["guidance_scale"], SITE.guidance_scale),
            width=_or(options["width"], limits.min_side),
            height=_or(options["height"], limits.min_side),
            num_images=options["num_images"],
            scheduler=options["scheduler"],
            **pictures,
            **{name: options[name] for name in CREATIVE_OPTIONS if name != "hires_upscaler"},
            hires_upscaler=upscaler_name,
            loras=loras,
        )
        for field, messages in params.errors(limits).items():
            errors.setdefault(field, []).extend(messages)
        if errors:
            raise CommandError("; ".join(f"--{flag(field)}: {message}"
                                         for field, messages in sorted(errors.items()) for message in messages))
        out = Path(options["out"])
        if out.exists() and not out.is_dir():
            raise CommandError(f"--out {out} exists and is not a folder")

        from generator.models import own_or_site

        choice = self._resolve_model(options)
        params = dataclasses.replace(params, loras=tuple(resolve_lora(choice) for choice in params.loras))
        translator = self._load_translator(params.translate)
        upscaler = self._load_upscaler(upscaler_file, upscaler_name, options) if params.is_hires else None
        scorer = self._load_clip(options["clip_model"])
        model = load_for_command(choice.source, options, lora=choice.lora, lora_scale=choice.lora_scale,
                                 name=choice.name)
        native = limits.side_within(model.native_size)
        steps, guidance_scale = own_or_site(choice.steps, choice.guidance_scale)
        params = dataclasses.replace(params, width=_or(options["width"], native), height=_or(options["height"], native),
                                     steps=_or(options["steps"], steps),
                                     guidance_scale=_or(options["guidance_scale"], guidance_scale))
        try:
            params.validate(limits)  # again at the model's native size (a hires scale may no longer fit)
            result = self._generate(model, params, limits, translator, options, upscaler)
        except ParamError as e:
            raise CommandError("; ".join(f"--{flag(field)}: {message}"
                                         for field, messages in e.errors.items() for message in messages)) from e
        self._save(out, result, scorer, result.translated_prompt or params.prompt)

    def _resolve_model(self, options):
        value = options["model"]
        if value and looks_like_path(value):
            return ModelChoice(value, None, 1.0, None)
        return registry_model(value)  # a registry LoRA entry stays fused; --lora mixes more on top

    def _load_translator(self, translate: str):
        if not translate:
            return None
        from generator.engine.translate import TranslatorUnavailable, load_translator

        try:
            return load_translator(settings.RETROPORTAL_TRANSLATE_MODEL)
        except TranslatorUnavailable as e:
            raise CommandError(f"--translate: {e.reason}") from e

    def _load_upscaler(self, path: str | None, name: str, options):
        if path is None:
            return None
        from generator.engine.loading import ModelLoadError
        from generator.engine.upscalers import load_upscaler

        try:
            return load_upscaler(path, name=name,
                                 allow_pickle=options["allow_pickle"] or settings.RETROPORTAL_ALLOW_PICKLE)
        except ModelLoadError as e:
            raise CommandError(f"--hires-upscaler: {e}") from e

    def _load_clip(self, spec):
        if not spec:
            return None
        from generator.engine.clipscore import ClipUnavailable, load_clip

        try:
            return load_clip(spec)
        except ClipUnavailable as e:
            raise CommandError(e.reason) from e

    def _generate(self, model, params, limits, translator, options, upscaler=None):
        from tqdm import tqdm

        from generator.engine.generate import generate

        with tqdm(total=params.total_steps(), unit="step", file=sys.stderr) as bar:
            def on_step(done, total):
                bar.update(done - bar.n)

            result = generate(model, params, on_step=on_step, limits=limits, translator=translator,
                              allow_pickle=options["allow_pickle"] or settings.RETROPORTAL_ALLOW_PICKLE,
                              upscaler=upscaler)
        if result.translated_prompt:
            self.stderr.write(f"translated prompt: {result.translated_prompt}")
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
