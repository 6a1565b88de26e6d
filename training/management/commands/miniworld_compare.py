"""manage.py miniworld_compare: the same prompts and seeds from several mini-world models in one sheet, and how
well mini-CLIP's CLIP-T ranks their pictures like the ground-truth classifier does (training.miniworld.compare)."""
import json
import random

import torch
from django.core.management.base import BaseCommand, CommandError

from generator.engine.files import write_atomic
from training.miniworld.captions import RETRO_PREFIX
from training.miniworld.pretrain_eval import SITE

SHEET_PROMPTS = [
    "a young girl with pink long hair and glasses, holding an umbrella, red shirt, in a market",
    "an old man with black short hair and glasses, blue shirt, in a village",
    "an elderly woman with long blonde hair, wearing a straw hat, at the seaside",
    "a boy with red ponytail hair, holding an onigiri, green shirt, in a classroom",
    "seorang nenek berambut pendek hitam dan berkacamata, kemeja ungu, di kota pada malam hari",
    "seorang gadis berambut kuncir dua biru, memakai pita, baju kuning, di taman bunga",
]


class Command(BaseCommand):
    help = "Side-by-side sheet of mini-world models (same prompts and seeds) and mini-CLIP's rank agreement."

    def add_arguments(self, parser):
        parser.add_argument("--model", action="append", required=True, metavar="LABEL=FOLDER[+LORA[@SCALE]][#CFG]",
                            help="A model to draw with; repeat. LORA: a LoRA .safetensors applied on FOLDER, at "
                                 "SCALE (default 1); CFG: the model's own CFG scale (default: the site's 7).")
        parser.add_argument("--out", required=True, help="PNG sheet to write.")
        parser.add_argument("--retro", action="store_true", help="Prefix every prompt with the retro style phrase.")
        parser.add_argument("--clip", default="", help="open_clip folder for the rank agreement (mini-CLIP).")
        parser.add_argument("--agreement-n", type=int, default=100, help="held-out prompts per model")
        parser.add_argument("--json", default="", help="Write the agreement numbers here.")

    def handle(self, *args, **o):
        from generator.engine.loading import load_pipeline
        from training.miniworld.compare import clip_rank_agreement, side_by_side
        from training.miniworld.pretrain_eval import generate, held_out_prompts, prompts_for

        torch.set_num_threads(1)
        pipes, guidance = {}, {}
        for spec in o["model"]:
            label, sep, path = spec.partition("=")
            if not sep or not path:
                raise CommandError(f"--model {spec!r}: expected LABEL=FOLDER or LABEL=FOLDER+LORA.safetensors")
            path, _, cfg = path.partition("#")
            folder, _, lora = path.partition("+")
            lora, _, scale = lora.partition("@")
            scale = number(spec, scale, 1.0, "the LoRA scale after @ must be a number, e.g. +LORA@0.8")
            guidance[label] = number(spec, cfg, SITE.guidance_scale, "the CFG scale after # must be a number, e.g. #3")
            pipes[label] = load_pipeline(folder, device="cpu", dtype=torch.float32, lora=lora or None,
                                         lora_scale=scale).pipeline
        prompts = [(RETRO_PREFIX if o["retro"] else "") + p for p in SHEET_PROMPTS]
        sheet = side_by_side(pipes, prompts, guidance)
        sheet.save(o["out"])
        self.stdout.write(f"wrote {o['out']} ({sheet.width}x{sheet.height})")
        if not o["clip"]:
            return
        from generator.engine.clipscore import load_clip

        clip = load_clip(f"local-dir:{o['clip']}", device="cpu")
        attrs = held_out_prompts(o["agreement_n"])
        styles = [random.Random(i).choice(["modern", "retro"]) for i in range(len(attrs))]
        prompts = [prompts_for([a], s)[0] for a, s in zip(attrs, styles)]
        results, pooled = {}, ([], [], [])
        for label, pipe in pipes.items():
            images = generate(pipe, prompts, guidance=guidance[label])
            results[label] = clip_rank_agreement(clip, images, prompts, attrs)
            for bucket, items in zip(pooled, (images, prompts, attrs)):
                bucket.extend(items)
            self.stdout.write(f"  {label}: Spearman(mini-CLIP-T, classifier fidelity) {results[label]['spearman']:.2f}")
        results["pooled"] = clip_rank_agreement(clip, *pooled)
        self.stdout.write(f"  pooled: {results['pooled']['spearman']:.2f} over {results['pooled']['n']} pictures")
        if o["json"]:
            write_atomic(o["json"], json.dumps(results, indent=2))


def number(spec: str, text: str, default: float, problem: str) -> float:
    try:
        return float(text) if text else default
    except ValueError:
        raise CommandError(f"--model {spec!r}: {problem}") from None
