"""manage.py miniworld_dataset --n 50 --out DIR: a retro mini-world dataset shaped like a user's folder.

Images 0000.png …, same-stem .txt captions and labels.jsonl (ground truth), with a scraped-set background
skew (training.miniworld.dataset.SCRAPED_BACKGROUNDS). Written atomically; an existing non-empty --out is refused.
"""
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training.miniworld.dataset import SCRAPED_BACKGROUNDS, ExportError, allocate, export_dataset


class Command(BaseCommand):
    help = "Export a mini-world dataset (pictures, captions, labels.jsonl) with a skewed background mix."

    def add_arguments(self, parser):
        parser.add_argument("--n", type=int, default=50, help="Number of pictures.")
        parser.add_argument("--out", required=True, help="Folder to create (must not exist, or be empty).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--style", choices=["retro", "modern"], default="retro")
        parser.add_argument("--size", type=int, default=64, choices=[64, 128])
        parser.add_argument("--indonesian", type=float, default=0.0,
                            help="Share of the captions written in Bahasa Indonesia (e.g. 0.3).")

    def handle(self, *args, **options):
        n = options["n"]
        with tqdm(total=max(n, 0), desc="rendering", unit="img", disable=None) as bar:
            try:
                out = export_dataset(options["out"], n=n, seed=options["seed"], style=options["style"],
                                     size=options["size"], indonesian=options["indonesian"],
                                     progress=lambda i: bar.update(1))
            except ExportError as exc:
                raise CommandError(str(exc)) from None
        mix = ", ".join(f"{bg.value} {k}" for bg, k in allocate(n, SCRAPED_BACKGROUNDS).items() if k)
        self.stdout.write(f"wrote {n} pictures + captions + labels.jsonl to {out} (backgrounds: {mix})")
