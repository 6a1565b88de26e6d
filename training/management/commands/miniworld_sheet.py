"""manage.py miniworld_sheet --out PNG: a contact sheet of mini-world renders (every attribute value, both styles)."""
from django.core.management.base import BaseCommand

from training.miniworld.sheet import save_contact_sheet


class Command(BaseCommand):
    help = "Draw a grid of mini-world renders: one row per attribute and style, every value; random characters last."

    def add_arguments(self, parser):
        parser.add_argument("--out", default="docs/miniworld/renders.png")
        parser.add_argument("--size", type=int, default=64, choices=[64, 128])
        parser.add_argument("--scale", type=int, default=2, help="Nearest-neighbour zoom of each cell.")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options):
        path = save_contact_sheet(options["out"], size=options["size"], scale=options["scale"], seed=options["seed"])
        self.stdout.write(f"wrote {path}")
