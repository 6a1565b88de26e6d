"""manage.py miniworld_classifier --out PATH [--steps N]: retrain the mini-world ground-truth classifier.

Trains training.miniworld.classifier from scratch on fresh renders (seeded, so a rerun reproduces it on the same
machine and library versions), evaluates it on renders from another seed, and writes PATH (fp16 safetensors)
with PATH-stem.json beside it: the config and a model card (accuracy per head, training time, machine).
The shipped copy is training/miniworld/weights/classifier.safetensors.
"""
import datetime

import torch
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training.miniworld.classifier import (ClassifierConfig, TrainConfig, evaluate, machine, save_classifier,
                                           train_classifier)


class Command(BaseCommand):
    help = "Train the mini-world attribute/style classifier on fresh renders and save it as safetensors."

    def add_arguments(self, parser):
        defaults = TrainConfig()
        parser.add_argument("--out", required=True, help="Where to write the .safetensors (config JSON beside it).")
        parser.add_argument("--steps", type=int, default=defaults.steps)
        parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
        parser.add_argument("--seed", type=int, default=defaults.seed)
        parser.add_argument("--eval-n", type=int, default=500, help="Fresh renders (other seed) to evaluate on.")
        parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine).")
        parser.add_argument("--fp32", action="store_true", help="Save float32 weights instead of float16.")

    def handle(self, *args, **options):
        if not options["out"].endswith(".safetensors"):
            raise CommandError("--out must end in .safetensors")
        if options["steps"] < 1:
            raise CommandError("--steps must be at least 1")
        torch.set_num_threads(options["threads"])
        train = TrainConfig(steps=options["steps"], batch_size=options["batch_size"], seed=options["seed"])
        with tqdm(total=train.steps, desc="training", unit="step", disable=None) as bar:
            def progress(step, info):
                bar.update(1)
                if step % 20 == 0:
                    bar.set_postfix(loss=f"{info['loss']:.3f}")
            model, summary = train_classifier(ClassifierConfig(), train, progress)
        accuracy = evaluate(model, n=options["eval_n"])
        card = {
            "what": "mini-world ground-truth classifier: one head per attribute + style (retro/modern)",
            "trained_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **summary,
            "eval": {"renders": options["eval_n"], "seed": 987654, "accuracy": accuracy},
            "machine": machine(),
            "dtype": "float32" if options["fp32"] else "float16",
        }
        path = save_classifier(model, options["out"], card=card, fp16=not options["fp32"])
        for name, acc in accuracy.items():
            self.stdout.write(f"  {name:<11} {acc:.3f}")
        self.stdout.write(f"saved {path} ({path.stat().st_size / 1024:.0f} KiB) after {summary['train_seconds']:.0f} s")
