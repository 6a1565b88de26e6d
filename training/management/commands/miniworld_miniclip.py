"""manage.py miniworld_miniclip: train mini-CLIP (training.miniworld.miniclip) and save it in open_clip's
local-dir layout (default: the shipped training/miniworld/weights/miniclip), with its retrieval accuracy."""
import json
from pathlib import Path

import torch
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from generator.engine.files import write_atomic
from training.miniworld.classifier import machine
from training.miniworld.miniclip import (SHIPPED_MINICLIP, SWAPPABLE, MiniClipConfig, attribute_discrimination,
                                        retrieval_accuracy, save_miniclip, train_miniclip)


class Command(BaseCommand):
    help = "Train the mini-world's small contrastive CLIP (for the bench's embedding metrics and demo CLIP scores)."

    def add_arguments(self, parser):
        d = MiniClipConfig()
        parser.add_argument("--out", default=str(SHIPPED_MINICLIP))
        parser.add_argument("--steps", type=int, default=d.steps)
        parser.add_argument("--batch", type=int, default=d.batch)
        parser.add_argument("--pool", type=int, default=d.pool)
        parser.add_argument("--seed", type=int, default=d.seed)
        parser.add_argument("--hard-negatives", type=int, default=d.hard_negatives,
                            help="captions per picture that differ from its own in one attribute (0: plain CLIP loss)")
        parser.add_argument("--indonesian", type=float, default=d.indonesian, help="share of Indonesian captions")
        parser.add_argument("--focus", default="", metavar="ATTR,...",
                            help="attributes half of the hard negatives swap (those it confuses, e.g. hair_style)")
        parser.add_argument("--init-from", default="", metavar="FOLDER",
                            help="an open_clip folder (mini-CLIP) to continue instead of starting from scratch")
        parser.add_argument("--learning-rate", type=float, default=d.learning_rate)
        parser.add_argument("--threads", type=int, default=1)

    def handle(self, *args, **o):
        from generator.engine.clipscore import load_clip

        torch.set_num_threads(o["threads"])
        focus = tuple(name.strip() for name in o["focus"].split(",") if name.strip())
        unknown = [name for name in focus if name not in SWAPPABLE]
        if unknown:
            raise CommandError(f"--focus {','.join(unknown)}: unknown; valid: {', '.join(SWAPPABLE)}")
        if o["init_from"] and not (Path(o["init_from"]) / "open_clip_config.json").exists():
            raise CommandError(f"--init-from {o['init_from']}: not an open_clip folder (no open_clip_config.json)")
        cfg = MiniClipConfig(steps=o["steps"], batch=o["batch"], pool=o["pool"], seed=o["seed"],
                             hard_negatives=o["hard_negatives"], indonesian=o["indonesian"], focus=focus,
                             init_from=o["init_from"], learning_rate=o["learning_rate"])
        with tqdm(total=cfg.steps, desc="mini-CLIP", unit="step", disable=None) as bar:
            def progress(step, total, loss):
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}")
            model, history = train_miniclip(cfg, progress)
        out = save_miniclip(model, o["out"])
        clip = load_clip(f"local-dir:{out}", device="cpu")
        accuracy, discrimination = retrieval_accuracy(clip), attribute_discrimination(clip)
        card = {"config": vars(cfg), "seconds": history["seconds"], "final_loss": sum(history["loss"][-50:]) / 50,
                "retrieval_top1_of_256": accuracy, "attribute_discrimination": discrimination, "machine": machine()}
        write_atomic(out / "card.json", json.dumps(card, indent=2))
        self.stdout.write(f"mini-CLIP in {out}: {history['seconds']} s, top-1 retrieval among 256 {accuracy}")
        for mode, scores in discrimination.items():
            self.stdout.write(f"  one-attribute discrimination ({mode}): "
                              + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
