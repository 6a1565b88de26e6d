"""Export a pretraining run as a pipeline folder with its model card (README.md, loss curves, sample grid)."""
from __future__ import annotations

import dataclasses
import datetime
import io
import json
from pathlib import Path

from PIL import Image

from .classifier import machine
from .captions import caption
from .pretrain import PretrainConfig, PretrainRun
from .pretrain_export import export_pipeline, folder_size, n_params, reconstruction_report
from .pretrain_eval import SITE, evaluate_pipeline, generate, grid, held_out_prompts

SAMPLE_SEED = 7
# (caption style, prompt set) pairs judged at export: the template in both forms, English paraphrases, Indonesian.
EVAL_SETS = (("modern", "caption"), ("retro", "caption"), ("modern", "paraphrase"), ("modern", "indonesian"))


def loss_plot(history: dict) -> Image.Image:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3), dpi=80)
    for ax, (phase, title) in zip(axes, [("vae", "VAE (L1 + grad L1 + KL)"), ("unet", "UNet (epsilon MSE)")]):
        points = history.get(phase)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        if not points:  # e.g. the VAE of a run continued with --init-from
            ax.text(0.5, 0.5, "not trained in this run", ha="center", va="center", fontsize=8, transform=ax.transAxes)
            continue
        ax.plot([p[0] for p in points], [p[1] for p in points])
        ax.set_yscale("log")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def sample_grid(pipe, n: int = 16) -> tuple[Image.Image, list[str]]:
    prompts = [caption(a, "modern") for a in held_out_prompts(n, seed=SAMPLE_SEED)]
    return grid(generate(pipe, prompts, seed=SAMPLE_SEED)), prompts


def _table(accuracy: dict) -> str:
    return "| " + " | ".join(accuracy) + " |\n|" + "---|" * len(accuracy) + "\n| " + " | ".join(
        f"{v:.0%}" for v in accuracy.values()) + " |"


def reproduce_flags(cfg) -> str:
    """The miniworld_pretrain flags of the settings that differ from the defaults (besides the step counts)."""
    default = PretrainConfig()
    flags = {"init_from": "--init-from", "latent_channels": "--latent-channels",
             "text_encoder_from": "--text-encoder-from", "vae_feature_from": "--vae-feature-from",
             "vae_feature_weight": "--vae-feature-weight", "indonesian": "--indonesian", "paraphrase": "--paraphrase",
             "style_words": "--style-words", "unet_lr": "--unet-lr",
             "unet_attention_from": "--unet-attention-from"}
    return "".join(f" {flag} {getattr(cfg, name)}" for name, flag in flags.items()
                   if getattr(cfg, name) != getattr(default, name))


def card_text(run: PretrainRun, info: dict) -> str:
    cfg = dataclasses.asdict(run.cfg)
    te = run.text_encoder.config
    ev = info.get("eval") or {}
    lines = [
        "# miniworld-base — the base mini model",
        "",
        "A tiny Stable Diffusion ("
        + ("diffusers format; its text encoder and tokenizer are mini-CLIP's, which pad with '!' as OpenCLIP and "
           "SD 2.x do, so it registers as sd2" if run.cfg.text_encoder_from else
           "SD 1.x architecture, diffusers format, real CLIP tokenizer")
        + ") trained from scratch on the retroportal mini-world (`training/miniworld/`): 64 px anime bust portraits in the *modern* style. "
        "Its VAE also learned *retro* renders (pastel palette, dithering, grain, scanlines) so that a fine-tune "
        "can reach that style; the UNet never saw a retro picture"
        + (" (its frozen text encoder, mini-CLIP's, learned the style's words from both styles' captions)."
           if run.cfg.text_encoder_from else ", nor did the text encoder."),
        "",
        f"* components: VAE {n_params(run.vae) / 1e6:.2f} M params (4x downscale, 64 px -> 16x16x"
        f"{run.vae.config.latent_channels} latents, scaling factor {info.get('scaling_factor', 0):.3f}), "
        f"UNet {n_params(run.unet) / 1e6:.2f} M, CLIP text encoder {n_params(run.text_encoder) / 1e6:.2f} M "
        f"(hidden {te.hidden_size}, {te.num_hidden_layers} layers; "
        f"{n_params(run.text_encoder.get_input_embeddings()) / 1e6:.1f} M of it is the token embedding)",
        *([f"* text encoder: mini-CLIP's text tower (`{run.cfg.text_encoder_from}`), frozen as SD's CLIP is; it "
           "learned both styles and Indonesian captions contrastively, so the UNet is conditioned on words that "
           "already mean something"] if run.cfg.text_encoder_from else []),
        *([f"* captions: {run.cfg.indonesian:.0%} Bahasa Indonesia, {run.cfg.paraphrase:.0%} of English ones "
           "paraphrased (training/miniworld/phrasing.py)"] if run.cfg.indonesian or run.cfg.paraphrase else []),
        *([f"* style words: {run.cfg.style_words:.0%} of captions open with a style phrase, retro or modern "
           "(phrasing.style_phrases), on modern pictures only: the person's words read the same after one"]
          if run.cfg.style_words else []),
        *([f"* initialised from `{run.cfg.init_from}` (its VAE kept; UNet and text encoder trained on)"]
          if run.cfg.init_from else []),
        f"* weights: {info['dtype']} safetensors, {info['size_mb']:.1f} MB in all; UNet and text encoder: "
        + (f"the EMA (decay {run.cfg.ema_decay}, bias-corrected: the initial weights removed)" if info["ema"] else
           f"the last step's weights (not the EMA: at decay {run.cfg.ema_decay} it lags a short run that is still "
           "improving fast)"),
        "* steps: " + (f"VAE none (kept from `{run.cfg.init_from}`)" if run.cfg.init_from else
                       f"VAE {info['vae_steps']} x {run.cfg.vae_batch}")
        + f", UNet {info['unet_steps']} x {run.cfg.unet_batch} (phase at export: {run.phase})",
        f"* wall-clock: {run.wall_seconds() / 60:.1f} min for the whole run (rendering the pool, encoding latents, "
        f"checkpoints), {run.elapsed / 60:.1f} min of it in optimisation steps",
        f"* machine: {info['machine']['cpu']}, {info['machine']['cpu_count']} cores, "
        f"{info['machine']['threads']} torch thread(s); torch {info['machine']['torch']}",
        f"* exported: {info['exported_at']}",
        "",
        "Reproduce: `DEBUG=1 OMP_NUM_THREADS=1 .venv/bin/python manage.py miniworld_pretrain --out RUN_DIR "
        + ("" if run.cfg.init_from else f"--vae-steps {info['vae_steps']} ")  # a continued run trains no VAE
        + f"--unet-steps {info['unet_steps']}" + reproduce_flags(run.cfg)
        + "` (resumable with `--resume`).",
        "",
        "## VAE round trip",
        "",
        f"Mean absolute error on 32 fresh renders per style (0-255 scale): modern {info['recon']['modern']:.1f}, "
        f"retro {info['recon']['retro']:.1f}. The classifier reads back from the reconstructions (the ceiling for "
        "any generation through this VAE):",
        "",
        *[f"* {style}: " + ", ".join(f"{k} {v:.0%}" for k, v in info["recon"][f"{style}_read_back"].items())
          for style in ("modern", "retro")],
        "",
        "Originals and reconstructions alternate (modern row, then retro):",
        "",
        "![reconstructions](reconstructions.png)",
        "",
        "## Evaluation (shipped ground-truth classifier)",
        "",
    ]
    if ev:
        for report in ev:
            lines += [
                f"{report['n']} prompts of attribute combinations held out of training, "
                f"**{report.get('prompt_set', 'caption')}** prompts in the **{report['prompt_style']}** form "
                f"(e.g. `{report['example_prompt']}`); "
                f"{report['steps']} steps {report['scheduler']}, CFG {report['guidance']}, {report['size']} px, "
                f"{report['seconds']:.0f} s. Share classified modern: **{report['modern_share']:.0%}**; all 8 "
                f"attributes right: {report['all_correct']:.0%}. Accuracy per attribute:",
                "",
                _table(report["accuracy"]),
                "",
            ]
        lines += [f"Targets: >= 85% per attribute, >= 95% modern. fp16 vs fp32 weights: {info.get('fp16_note', 'n/a')}", ""]
    else:
        lines += ["(not evaluated at export)", ""]
    lines += [
        "## Loss curves", "", "![loss](loss.png)", "",
        f"## Samples (held-out prompts, {SITE.steps} steps {SITE.scheduler}, CFG {SITE.guidance_scale:g})", "", "![samples](samples.png)", "",
        "Prompts, row by row: " + "; ".join(f"`{p}`" for p in info["sample_prompts"]), "",
        "## Config", "", "```json", json.dumps(cfg, indent=1), "```", "",
    ]
    return "\n".join(lines)


def export_run(run: PretrainRun, out_dir: str | Path, fp16: bool = True, eval_n: int = 0,
               eval_sets: tuple = EVAL_SETS, compare_fp32: bool = False,
               ema: bool = True) -> tuple[Path, dict]:
    """Write the run's EMA pipeline with README.md, loss.png and samples.png to out_dir (atomically)."""
    pipe = run.pipeline(ema=ema)
    fp16_note = "n/a"
    if fp16 and compare_fp32 and eval_n:
        full = evaluate_pipeline(pipe, n=eval_n, style="modern")[0]
    if fp16:  # judge what is shipped: round the weights through fp16 before sampling and evaluating
        for module in (pipe.unet, pipe.vae, pipe.text_encoder):
            module.load_state_dict({k: v.half().float() for k, v in module.state_dict().items()})
    info = {
        "dtype": "float16" if fp16 else "float32", "vae_steps": run.step if run.phase == "vae" else run.cfg.vae_steps,
        "unet_steps": run.step if run.phase in ("unet", "done") else 0,
        "machine": machine(), "ema": ema,
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "scaling_factor": pipe.vae.config.scaling_factor,
    }
    samples, info["sample_prompts"] = sample_grid(pipe)
    info["eval"] = [evaluate_pipeline(pipe, n=eval_n, style=s, prompt_set=p)[0] for s, p in eval_sets] if eval_n else []
    if fp16 and compare_fp32 and eval_n:
        half = info["eval"][0]
        diff = max(abs(full["accuracy"][k] - half["accuracy"][k]) for k in full["accuracy"])
        fp16_note = (f"same {eval_n} modern prompts with fp32 weights: mean accuracy {full['mean_accuracy']:.1%} vs "
                     f"{half['mean_accuracy']:.1%} fp16, modern {full['modern_share']:.0%} vs {half['modern_share']:.0%}, "
                     f"largest per-attribute difference {diff:.0%}")
    info["fp16_note"] = fp16_note
    info["recon"], pictures = reconstruction_report(pipe.vae)
    info["size_mb"] = 0.0
    files = {"loss.png": loss_plot(run.history), "samples.png": samples,
             "reconstructions.png": grid([Image.fromarray(p) for p in pictures], cols=16)}
    out = export_pipeline(pipe, out_dir, fp16=fp16, extra_files=files)
    info["size_mb"] = folder_size(out) / 1e6
    (out / "README.md").write_text(card_text(run, info), encoding="utf-8")
    (out / "pretrain.json").write_text(json.dumps({k: v for k, v in info.items() if k != "machine"} | {
        "machine": info["machine"], "config": dataclasses.asdict(run.cfg), "history": run.history}, indent=1))
    return out, info
