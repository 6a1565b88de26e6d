"""manage.py miniworld_pretrain --out DIR: pretrain the base mini model (tiny SD 1.x) on the mini-world.

DIR holds the run: pool.pt (fixed renders), latents.pt, checkpoint.pt (atomic, every --checkpoint-minutes and
at phase ends), and DIR/pipeline — the exported diffusers folder with its model card (README.md, loss.png,
samples.png). --resume continues a stopped run; Ctrl-C / SIGTERM stop it cleanly (checkpoint, then export).
--export-only re-exports (e.g. to training/miniworld/weights/base with --export-to) without training.
"""
import dataclasses
import signal
import sys
import time
from pathlib import Path

import torch
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training.miniworld.pretrain import Hooks, PretrainConfig, PretrainRun, pretrain, saved_config
from training.miniworld.pretrain_models import InitFromError
from training.miniworld.pretrain_card import export_run


class Command(BaseCommand):
    help = "Pretrain the tiny mini-world Stable Diffusion (VAE on both styles, UNet + text encoder on modern)."

    def add_arguments(self, parser):
        d = PretrainConfig()
        parser.add_argument("--out", required=True, help="Run folder (checkpoints, caches, exported pipeline).")
        parser.add_argument("--resume", action="store_true", help="Continue the run in --out from its checkpoint.")
        parser.add_argument("--vae-steps", type=int, default=d.vae_steps)
        parser.add_argument("--unet-steps", type=int, default=d.unet_steps)
        parser.add_argument("--pool-modern", type=int, default=d.pool_modern)
        parser.add_argument("--pool-retro", type=int, default=d.pool_retro)
        parser.add_argument("--seed", type=int, default=d.seed)
        parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine).")
        parser.add_argument("--checkpoint-minutes", type=float, default=3.0)
        parser.add_argument("--export-to", help="Pipeline folder to write (default DIR/pipeline).")
        parser.add_argument("--export-only", action="store_true", help="Export the checkpoint; no training.")
        parser.add_argument("--eval-n", type=int, default=0,
                            help="Held-out prompts per caption style to judge with the classifier at export.")
        parser.add_argument("--weights", choices=["ema", "raw"], default="ema",
                            help="Export the (bias-corrected) EMA of the UNet and text encoder, or the last step's.")
        parser.add_argument("--fp32", action="store_true", help="Export float32 weights instead of float16.")
        parser.add_argument("--compare-fp32", action="store_true",
                            help="With --eval-n: also judge the fp32 weights and note the difference in the card.")
        parser.add_argument("--init-from", metavar="FOLDER", default="",
                            help="Continue from an exported pipeline (e.g. training/miniworld/weights/base) instead "
                                 "of random weights: its VAE is kept, UNet and text encoder train --unet-steps more.")
        parser.add_argument("--latent-channels", type=int, default=d.latent_channels,
                            help="VAE latent channels (SD: 4; more keep finer detail through the same latent grid).")
        parser.add_argument("--vae-feature-from", metavar="FOLDER", default="",
                            help="An open_clip folder (mini-CLIP) whose image tower gives the VAE a perceptual loss.")
        parser.add_argument("--vae-feature-weight", type=float, default=d.vae_feature_weight)
        parser.add_argument("--text-encoder-from", metavar="FOLDER", default="",
                            help="An open_clip folder (e.g. training/miniworld/weights/miniclip) whose text tower is "
                                 "the frozen text encoder, as SD's CLIP is; default: train one with the UNet.")
        parser.add_argument("--indonesian", type=float, default=d.indonesian,
                            help="Share of UNet captions in Bahasa Indonesia (training/miniworld/phrasing.py).")
        parser.add_argument("--paraphrase", type=float, default=d.paraphrase,
                            help="Share of English UNet captions paraphrased (synonyms, word order).")
        parser.add_argument("--style-words", type=float, default=d.style_words,
                            help="Share of UNet captions opening with a style phrase, retro or modern, on modern "
                                 "pictures: the person's words are then read the same after a style phrase.")
        parser.add_argument("--unet-attention-from", type=int, default=d.unet_attention_from,
                            help="First UNet block with attention (0: also on the full latent grid, for small "
                                 "features; about twice the step time). With --init-from, a lower value grows the "
                                 "loaded UNet; its new attention blocks start as identities.")
        parser.add_argument("--unet-lr", type=float, default=d.unet_lr,
                            help="UNet learning rate (constant after warmup); lower it to continue a run with --init-from.")
        parser.add_argument("--text-encoder-lr", type=float, default=d.text_encoder_lr,
                            help="With --text-encoder-from: 0 keeps it frozen (as SD does); a small rate (e.g. 3e-5) "
                                 "fine-tunes it with the UNet.")
        parser.add_argument("--tiny", action="store_true", help="Tiny sizes for a smoke test (minutes → seconds).")

    def config(self, options) -> PretrainConfig:
        cfg = PretrainConfig(seed=options["seed"], vae_steps=options["vae_steps"], unet_steps=options["unet_steps"],
                             pool_modern=options["pool_modern"], pool_retro=options["pool_retro"],
                             init_from=options["init_from"], latent_channels=options["latent_channels"],
                             text_encoder_from=options["text_encoder_from"], indonesian=options["indonesian"],
                             paraphrase=options["paraphrase"], vae_feature_from=options["vae_feature_from"],
                             vae_feature_weight=options["vae_feature_weight"], unet_lr=options["unet_lr"],
                             style_words=options["style_words"], text_encoder_lr=options["text_encoder_lr"],
                             unet_attention_from=options["unet_attention_from"])
        if options["tiny"]:
            cfg = dataclasses.replace(cfg, vae_channels=(8, 16, 16), unet_channels=(32, 32, 32), text_hidden=32,
                                      text_layers=1, unet_heads=4, vae_batch=4, unet_batch=4, encode_batch=16)
        return cfg

    def handle(self, *args, **options):
        torch.set_num_threads(options["threads"])
        out = Path(options["out"])
        if min(options["vae_steps"], options["unet_steps"], options["pool_modern"]) < 1:
            raise CommandError("--vae-steps, --unet-steps and --pool-modern must be at least 1")
        if (out / "checkpoint.pt").exists() and not (options["resume"] or options["export_only"]):
            raise CommandError(f"{out} already holds a run; pass --resume to continue it, or pick another --out")
        cfg = self.config(options)
        if options["export_only"]:  # the run's own config, as it was trained
            cfg = saved_config(out) or cfg
        elif options["resume"]:  # the run's own architecture; steps from the options (a run can be extended)
            cfg = saved_config(out, vae_steps=cfg.vae_steps, unet_steps=cfg.unet_steps) or cfg
        started = time.monotonic()
        if options["export_only"]:
            run = PretrainRun(out, cfg)
            if not run.load():
                raise CommandError(f"no checkpoint in {out}")
            if (out / "latents.pt").exists():  # the VAE's latent scaling factor
                run.load_or_encode_latents()
        else:
            run = self.train(out, cfg, options)
        target = Path(options["export_to"] or out / "pipeline")
        self.stdout.write(f"exporting {run.phase} step {run.step} to {target} …")
        folder, info = export_run(run, target, fp16=not options["fp32"], eval_n=options["eval_n"],
                                  compare_fp32=options["compare_fp32"], ema=options["weights"] == "ema")
        for report in info["eval"]:
            acc = " ".join(f"{k}={v:.0%}" for k, v in report["accuracy"].items())
            self.stdout.write(f"  {report['prompt_style']} {report['prompt_set']} prompts: modern {report['modern_share']:.0%}; {acc}")
        self.stdout.write(f"  VAE round-trip error (0-255): modern {info['recon']['modern']:.1f}, "
                          f"retro {info['recon']['retro']:.1f}")
        self.stdout.write(f"wrote {folder} ({info['size_mb']:.1f} MB) in {time.monotonic() - started:.0f} s")

    def train(self, out: Path, cfg: PretrainConfig, options) -> PretrainRun:
        stop = {"asked": False}

        def ask_stop(signum, frame):
            stop["asked"] = True
            self.stderr.write(f"signal {signum}: stopping after this step (checkpoint, then export)")

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, ask_stop)
        bars = {}

        def progress(phase, done, total, info=None):
            bar = bars.get(phase)
            if bar is None:
                for other in bars.values():
                    other.close()
                # Also when logging to a file (nohup): one update every 30 s keeps the log short.
                tty = sys.stderr.isatty()
                bar = bars[phase] = tqdm(total=total, desc=phase, unit="step" if phase in ("vae", "unet") else "img",
                                         mininterval=1 if tty else 30, miniters=1, file=sys.stderr)
            bar.update(done - bar.n)
            if info and done % 10 == 0:
                bar.set_postfix(loss=f"{info['loss']:.4f}")

        hooks = Hooks(progress=progress, should_stop=lambda phase, step: stop["asked"],
                      checkpoint_seconds=options["checkpoint_minutes"] * 60)
        try:
            run = pretrain(out, cfg, hooks, resume=options["resume"])
        except (FileExistsError, InitFromError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            for bar in bars.values():
                bar.close()
        self.stdout.write(f"{'stopped' if stop['asked'] else 'finished'} at {run.phase} step {run.step}; "
                          f"{run.elapsed / 60:.1f} min of training steps; checkpoint {run.checkpoint_path}")
        return run
