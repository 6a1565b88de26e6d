"""manage.py miniworld_diagnose: what a mini-world base (optionally with a LoRA) draws instead of the attributes it
misses (confusion matrices at the site's sampler and steps, on the held-out prompts and seeds the model cards'
prompt sets use) and how far its text encoder moves the conditioning per attribute
(training.miniworld.diagnose)."""
import torch
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training.miniworld.attributes import Style
from training.miniworld.pretrain_eval import PROMPT_SETS


class Command(BaseCommand):
    help = "Confusion matrices of the attributes a mini-world base misses, and its text encoder's token separation."

    def add_arguments(self, parser):
        parser.add_argument("model", help="A diffusers pipeline folder (e.g. training/miniworld/weights/base).")
        parser.add_argument("--n", type=int, default=200, help="Held-out template prompts to draw and judge.")
        parser.add_argument("--below", type=float, default=0.9,
                            help="Print the confusion matrix of every attribute read right less often than this.")
        parser.add_argument("--lora", help="A LoRA file to load on the model (e.g. "
                                           "training/miniworld/weights/retro-lora/pytorch_lora_weights.safetensors).")
        parser.add_argument("--lora-scale", type=float, default=1.0)
        parser.add_argument("--guidance", type=float, default=None,
                            help="CFG scale (default: the site's 7; the shipped retro LoRA is registered at 3).")
        parser.add_argument("--style", choices=[s.value for s in Style], default="modern",
                            help="retro: prompts open with the style phrase (retro share printed too).")
        parser.add_argument("--prompt-set", choices=PROMPT_SETS, default="caption")
        parser.add_argument("--threads", type=int, default=1)

    def handle(self, *args, **o):
        from generator.engine.loading import ModelLoadError, load_pipeline
        from training.miniworld.attributes import ATTRIBUTES
        from training.miniworld.classifier import classify
        from training.miniworld.diagnose import confusion, token_separation
        from training.miniworld.pretrain_eval import EVAL_SEED, SITE, generate, held_out_prompts, prompts_for

        problems = ([f"--n {o['n']}: expected 1 or more"] if o["n"] < 1 else []) + \
            ([f"--guidance {o['guidance']:g}: expected a CFG scale of 1 or more, e.g. 3"]
             if o["guidance"] is not None and o["guidance"] < 1 else [])
        if problems:
            raise CommandError("; ".join(problems))
        torch.set_num_threads(o["threads"])
        try:
            pipe = load_pipeline(o["model"], device="cpu", dtype=torch.float32, lora=o["lora"],
                                 lora_scale=o["lora_scale"]).pipeline
        except ModelLoadError as exc:
            raise CommandError(str(exc)) from None
        separation = token_separation(pipe.text_encoder, pipe.tokenizer)
        self.stdout.write("token separation (max over tokens of |h_a - h_b| / mean |h|, one attribute swapped):")
        self.stdout.write("  " + "  ".join(f"{name} {value:.2f}" for name, value in separation.items()))
        attrs = held_out_prompts(o["n"], EVAL_SEED)
        guidance = SITE.guidance_scale if o["guidance"] is None else o["guidance"]
        prompts = prompts_for(attrs, o["style"], o["prompt_set"], EVAL_SEED)
        with tqdm(total=len(attrs), desc="drawing", unit="img", disable=None) as bar:
            images = generate(pipe, prompts, seed=EVAL_SEED, guidance=guidance, progress=bar.update)
        preds = classify(images)
        retro = sum(p["style"] == "retro" for p in preds) / len(preds)
        self.stdout.write(f"{o['n']} {o['style']} {o['prompt_set']} prompts at CFG {guidance:g}: "
                          f"{retro:.0%} drawn retro")
        for name in ATTRIBUTES:
            values, counts = confusion(preds, attrs, name)
            accuracy = counts.trace() / counts.sum()
            self.stdout.write(f"{name}: {accuracy:.0%} read right")
            if accuracy >= o["below"]:
                continue
            width = max(len(v) for v in values) + 2
            self.stdout.write("  asked \\ drawn".ljust(width + 2) + "".join(v.rjust(width) for v in values))
            for value, row in zip(values, counts):
                self.stdout.write(f"  {value}".ljust(width + 2) + "".join(str(c).rjust(width) for c in row))
