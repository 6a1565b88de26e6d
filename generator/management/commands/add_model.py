"""manage.py add_model: register a model users can pick, after checking that it really loads.

Loading once up front turns "the worker failed at 3 am" into an immediate one-line error for the
administrator, and records the detected architecture (sd1, sd2, sd2-v, sdxl) in the registry.
"""
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from generator.management.loading import load_for_command
from generator.services import configured_limits


class Command(BaseCommand):
    help = "Register (or update) a model in the registry after checking that it loads."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="short name (slug) used in forms, API and commands")
        parser.add_argument("--path", required=True, help="diffusers folder, .safetensors file, or hub id org/repo")
        parser.add_argument("--default", action="store_true", help="make it the default model (only one is)")
        parser.add_argument("--lora-of", metavar="BASE_NAME", help="--path is a LoRA for this registered base model")
        parser.add_argument("--upscaler", action="store_true",
                            help="--path is an ESRGAN-family upscaler file for the hires fix (scale detected)")
        parser.add_argument("--lora-scale", type=float, default=1.0)
        parser.add_argument("--default-steps", type=int,
                            help="steps the form, API and CLI start at for this model (default: the site's)")
        parser.add_argument("--default-guidance-scale", type=float,
                            help="CFG scale the form, API and CLI start at for this model (default: the site's)")
        parser.add_argument("--finetuned-from", metavar="BASE_NAME", help="record the base model a fine-tune came from")
        parser.add_argument("--description", default="")
        parser.add_argument("--allow-pickle", action="store_true", help="allow .ckpt/.bin/.pt/.pth files (they can run code)")
        parser.add_argument("--config-dir", help="diffusers folder with configs for a single-file checkpoint (offline)")

    def handle(self, *args, **options):
        from django.utils.text import slugify

        from generator.models import AIModel

        name = options["name"]
        if slugify(name) != name:
            raise CommandError(f"--name {name!r} must be a slug (letters, digits, - and _), e.g. {slugify(name)!r}")
        path = options["path"]
        source = str(Path(path).expanduser().resolve()) if Path(path).expanduser().exists() else path
        if options["upscaler"]:
            return self._add_upscaler(AIModel, name, source, options)
        defaults = {"default_steps": options["default_steps"],
                    "default_guidance_scale": options["default_guidance_scale"]}
        try:
            AIModel(**defaults).clean()
        except ValidationError as exc:
            raise CommandError("; ".join(f"--{field.replace('_', '-')}: {message}"
                                         for field, messages in exc.message_dict.items() for message in messages))
        parent = self._parent(AIModel, options["lora_of"] or options["finetuned_from"])
        if options["lora_of"]:
            kind, base_source, lora = AIModel.Kind.LORA, parent.source, source
        else:
            kind = AIModel.Kind.FINETUNED if parent else AIModel.Kind.BASE
            base_source, lora = source, None
        model = load_for_command(base_source, options, lora=lora, lora_scale=options["lora_scale"])

        with transaction.atomic():
            if options["default"]:
                AIModel.objects.filter(is_default=True).exclude(name=name).update(is_default=False)
            entry, created = AIModel.objects.update_or_create(
                name=name,
                defaults=dict(
                    source=source,
                    kind=kind,
                    parent=parent,
                    lora_scale=options["lora_scale"],
                    architecture=model.architecture,
                    native_size=model.native_size,
                    **defaults,
                    **({"description": options["description"]} if options["description"] else {}),
                    **({"is_default": True} if options["default"] else {}),
                ),
            )
        verb = "added" if created else "updated"
        default = ", default" if entry.is_default else ""
        own = entry.generation_defaults(configured_limits())
        self.stdout.write(
            f"{verb} {entry.name}: {entry.kind}, {entry.architecture}, {entry.native_size}px, {own['steps']} steps, "
            f"CFG {own['guidance_scale']:g}, {entry.source}{default}"
        )

    def _add_upscaler(self, AIModel, name, source, options):
        from generator.engine.loading import ModelLoadError
        from generator.engine.upscalers import load_upscaler

        clash = [flag for flag in ("default", "lora_of", "finetuned_from") if options[flag]]
        if clash:
            raise CommandError(f"--upscaler: an upscaler has no {', '.join('--' + f.replace('_', '-') for f in clash)}"
                               "; it is offered as hires_upscaler, not as a model to draw with")
        try:
            upscaler = load_upscaler(source, device="cpu", allow_pickle=options["allow_pickle"])
        except ModelLoadError as exc:
            raise CommandError(f"--path: {exc}") from exc
        entry, created = AIModel.objects.update_or_create(name=name, defaults=dict(
            source=source, kind=AIModel.Kind.UPSCALER, parent=None, architecture=upscaler.architecture,
            upscale_factor=upscaler.scale, is_default=False,
            **({"description": options["description"]} if options["description"] else {})))
        self.stdout.write(f"{'added' if created else 'updated'} {entry.name}: upscaler, {entry.architecture} "
                          f"x{entry.upscale_factor}, {entry.source}")

    def _parent(self, AIModel, base_name):
        if not base_name:
            return None
        parent = AIModel.objects.filter(name=base_name).first()
        if parent is None:
            raise CommandError(f"base model {base_name!r} is not registered; add it first with manage.py add_model")
        return parent
