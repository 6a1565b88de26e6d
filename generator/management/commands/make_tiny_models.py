"""manage.py make_tiny_models: the offline fixture models (tiny SD1/SD2-v/SDXL + a tiny open_clip).

Used by `make demo` as the default model until real weights are registered, and by tests. Random
weights, real architectures: pictures are noise, every code path is real. See generator.engine.tiny.
"""
from pathlib import Path

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Write tiny offline models to --out: sd1/, sd2/, sdxl/ (diffusers folders) and clip/ (open_clip local-dir)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="folder to create the models in")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--force", action="store_true", help="rebuild models that already exist")

    def handle(self, *args, **options):
        from generator.engine.tiny import KINDS, save_tiny_model, save_tiny_open_clip

        out = Path(options["out"]).expanduser().absolute()
        builders = [(kind, lambda d, k=kind: save_tiny_model(k, d, seed=options["seed"], overwrite=True)) for kind in KINDS]
        builders.append(("clip", lambda d: save_tiny_open_clip(d, seed=options["seed"], overwrite=True)))
        for name, build in builders:
            target = out / name
            if target.exists() and not options["force"]:
                self.stdout.write(f"{target} exists (use --force to rebuild)")
                continue
            build(target)
            self.stdout.write(f"wrote {target}")
