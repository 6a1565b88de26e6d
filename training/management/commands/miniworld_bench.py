"""manage.py miniworld_bench: the mini-world fine-tuning benchmark (training.miniworld.bench).

Trains the grid dataset size × steps × regularization through the project's DreamBooth path, evaluates every
stop against the world's ground truth, compares LoRA with full fine-tuning at the best cell and writes the
results table and plots. Every phase skips finished work: re-run the same command to continue.
"""
import time

import torch
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training.miniworld import bench, bench_report, bench_ship, shipped
from training.miniworld.bench_report import retro_card


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CommandError(f"expected comma-separated integers, got {text!r}") from None


class Command(BaseCommand):
    help = "Run the mini-world DreamBooth benchmark grid (size × steps × regularization) and write its report."

    def add_arguments(self, parser):
        d = bench.BenchConfig.__dataclass_fields__
        parser.add_argument("--out", default="miniworld-bench", help="Bench folder (datasets, runs, models, evals).")
        parser.add_argument("--phase", choices=["train", "eval", "compare", "report", "all"], default="all")
        parser.add_argument("--sizes", type=_ints, default="10,20,30,50", help="Retro pictures per fine-tune set.")
        parser.add_argument("--steps", type=_ints, default="200,1000,5000", help="Optimizer steps to evaluate.")
        parser.add_argument("--regs", default="none,l2,l2sp", help="Regularizations: none, l2 (toward zero), l2sp.")
        parser.add_argument("--method", choices=bench.METHODS, default=d["method"].default)
        parser.add_argument("--train-text-encoder", action="store_true",
                            help="Also train the text encoder (LoRA runs: LoRA on its attention).")
        parser.add_argument("--ship", metavar="MODEL",
                            help="Publish this evaluated LoRA snapshot (e.g. lora-n50-l2sp-s1000) as the shipped "
                                 "retro model; no training or evaluation.")
        parser.add_argument("--ship-to", default=str(shipped.RETRO_LORA_DIR))
        parser.add_argument("--ship-n", type=int, default=100,
                            help="Held-out prompts per prompt set (template, paraphrases, Indonesian) judged for "
                                 "the shipped model's card, with the site's defaults; 0 skips them.")
        parser.add_argument("--reg-weight", type=float, default=d["reg_weight"].default)
        parser.add_argument("--eval-n", type=int, default=d["eval_n"].default, help="Pictures per evaluation split.")
        parser.add_argument("--num-class-images", type=int, default=d["num_class_images"].default,
                            help="Prior-preservation pictures (captioned) from the base model.")
        parser.add_argument("--base-model", default=d["base_model"].default)
        parser.add_argument("--docs", default="docs/miniworld", help="Where the report (table, plots) goes.")
        parser.add_argument("--rank", type=int, default=d["lora_rank"].default, help="LoRA rank (--method lora).")
        parser.add_argument("--lora-lr", type=float, default=d["lora_learning_rate"].default,
                            help="UNet LoRA learning rate (--method lora).")
        parser.add_argument("--prior-loss-weight", type=float, default=d["prior_loss_weight"].default,
                            help="Weight of the class pictures' loss (prior preservation).")
        parser.add_argument("--instance-prompt", default=d["instance_prompt"].default,
                            help="The fine-tune's instance prompt, which retro captions and evaluation prompts start "
                                 "with: the style phrase, or a DreamBooth identifier such as 'sks style'.")
        parser.add_argument("--indonesian", type=float, default=d["indonesian"].default,
                            help="Share of the retro set's and the class pictures' captions in Bahasa Indonesia "
                                 "(e.g. 0.3), so the style binds to the Indonesian retro phrase too.")
        parser.add_argument("--caption-tag-dropout", type=float, default=d["caption_tag_dropout"].default,
                            help="Share of each retro and class caption's tags left out per training step (e.g. "
                                 "0.3; TrainConfig.caption_tag_dropout).")
        parser.add_argument("--caption-dropout", type=float, default=d["caption_dropout"].default,
                            help="Share of retro and class captions replaced by the empty prompt per step (e.g. "
                                 "0.1; TrainConfig.caption_dropout): the LoRA learns what CFG subtracts.")
        parser.add_argument("--backgrounds", default=d["backgrounds"].default, choices=sorted(bench.BACKGROUND_MIXES),
                            help="The retro set's scenes: 'scraped' (60%% flower garden, market and classroom "
                                 "absent: the replaced system's question) or 'balanced' (every scene equally).")
        parser.add_argument("--lora-scale", type=float, default=d["lora_scale"].default,
                            help="With --ship: judge the prompt sets at this LoRA scale and register the shipped "
                                 "LoRA at it (e.g. 0.8: style with less of the retro texture's mud).")
        parser.add_argument("--ship-guidance", type=float, default=d["ship_guidance"].default,
                            help="With --ship: judge the prompt sets at this CFG scale and register the shipped LoRA "
                                 "with it as its default (e.g. 4; default: the site's 7).")
        parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine).")

    def handle(self, *args, **o):
        torch.set_num_threads(o["threads"])
        try:
            cfg = bench.BenchConfig(out=o["out"], base_model=o["base_model"], sizes=o["sizes"], steps=o["steps"],
                                    regularizations=[r.strip() for r in o["regs"].split(",") if r.strip()],
                                    method=o["method"], reg_weight=o["reg_weight"], eval_n=o["eval_n"],
                                    num_class_images=o["num_class_images"],
                                    train_text_encoder=o["train_text_encoder"], lora_rank=o["rank"],
                                    lora_learning_rate=o["lora_lr"], prior_loss_weight=o["prior_loss_weight"],
                                    instance_prompt=o["instance_prompt"], indonesian=o["indonesian"],
                                    caption_tag_dropout=o["caption_tag_dropout"],
                                    caption_dropout=o["caption_dropout"], lora_scale=o["lora_scale"],
                                    ship_guidance=o["ship_guidance"], backgrounds=o["backgrounds"])
        except bench.BenchError as exc:
            raise CommandError(str(exc)) from None
        started = time.perf_counter()
        log = self.stdout.write
        command = " ".join(["manage.py miniworld_bench"] + args_of(o))
        if o["ship"]:
            return self.ship(cfg, o["ship"], o["ship_to"], o["ship_n"], command)
        phases = ["train", "eval", "compare", "report"] if o["phase"] == "all" else [o["phase"]]
        if "train" in phases:
            with tqdm(desc="steps", unit="step", disable=None) as bar:
                bench.run_training(cfg, bench.grid_cells(cfg), log, on_progress=lambda s, t, logs: bar.update(1))
        if "eval" in phases:
            bench.run_evaluations(cfg, bench.grid_models(cfg), log)
        if "compare" in phases:
            bench.run_comparison(cfg, log)
        if "report" in phases:
            path = bench_report.write_report(cfg, o["docs"], command=command)
            log(f"report: {path}")
        log(f"done in {time.perf_counter() - started:.0f} s")

    def ship(self, cfg: bench.BenchConfig, model: str, target: str, n: int, command: str) -> None:
        results = bench.load_results(cfg)
        if model not in results:
            raise CommandError(f"--ship: {model} has no evaluation in {cfg.out}/evals; run --phase eval first")
        if n < 0:
            raise CommandError(f"--ship-n {n}: expected 0 or more")
        try:
            bench_ship.lora_snapshot(cfg, model)
            pipe = bench_ship.snapshot_pipeline(cfg, model)
            prompt_sets = bench_ship.evaluate_prompt_sets(cfg, model, pipe, n, self.stdout.write) if n else []
            card = retro_card(model, results[model], command, prompt_sets, cfg.backgrounds, cfg.ship_guidance)
            out = bench_ship.ship(cfg, model, target, card, bench_ship.registered_samples(cfg, pipe))
        except bench.BenchError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"shipped {model} to {out}")


def args_of(o: dict) -> list[str]:
    return [f"--out {o['out']}", f"--sizes {','.join(map(str, o['sizes']))}",
            f"--steps {','.join(map(str, o['steps']))}", f"--regs {o['regs']}", f"--method {o['method']}",
            f"--reg-weight {o['reg_weight']}", f"--eval-n {o['eval_n']}",
            f"--num-class-images {o['num_class_images']}", f"--rank {o['rank']}", f"--lora-lr {o['lora_lr']}",
            f"--prior-loss-weight {o['prior_loss_weight']}", f"--instance-prompt '{o['instance_prompt']}'"] + \
        (["--train-text-encoder"] if o["train_text_encoder"] else []) + \
        ([f"--base-model {o['base_model']}"] if o["base_model"] != str(shipped.BASE) else []) + \
        ([f"--indonesian {o['indonesian']}"] if o["indonesian"] else []) + \
        ([f"--caption-tag-dropout {o['caption_tag_dropout']}"] if o["caption_tag_dropout"] else []) + \
        ([f"--caption-dropout {o['caption_dropout']}"] if o["caption_dropout"] else []) + \
        ([f"--backgrounds {o['backgrounds']}"] if o["backgrounds"] != "scraped" else []) + \
        ([f"--lora-scale {o['lora_scale']}"] if o["lora_scale"] != 1 else []) + \
        ([f"--ship-guidance {o['ship_guidance']}"] if o["ship_guidance"] != bench.SITE.guidance_scale else []) + \
        ([f"--threads {o['threads']}"] if o["threads"] != 1 else [])
