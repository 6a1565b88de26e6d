"""Validation grids: fixed prompts x fixed seeds rendered by the model being trained, with labels."""
from pathlib import Path

import torch


def build_pipeline(vae, text_encoder, tokenizer, unet, scheduler):
    """A StableDiffusionPipeline over the live training modules (no copies)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def render(pipe, prompts: list[str], seeds: list[int], steps: int, size: int) -> list[list]:
    """images[i][j]: prompt i, seed j (each from its own torch.Generator, so the grid is reproducible)."""
    rows = []
    for prompt in prompts:
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        out = pipe([prompt] * len(seeds), num_inference_steps=steps, height=size, width=size, generator=gens)
        rows.append(out.images)
    return rows


def grid(images: list[list], prompts: list[str], seeds: list[int], title: str):
    """A labelled PIL grid: a title line, one row per prompt (prompt text above), one column per seed."""
    from PIL import Image, ImageDraw

    w, h = images[0][0].size
    cell_w, label_h = max(w, 96), 14
    sheet = Image.new("RGB", (cell_w * len(seeds), label_h + len(prompts) * (h + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((2, 1), title, fill="black")
    for i, (row, prompt) in enumerate(zip(images, prompts)):
        top = label_h + i * (h + label_h)
        draw.text((2, top + 1), f"{prompt[:60]}", fill="black")
        for j, (image, seed) in enumerate(zip(row, seeds)):
            sheet.paste(image, (j * cell_w, top + label_h))
            draw.text((j * cell_w + 2, top + label_h + 2), f"seed {seed}", fill="white")
    return sheet


def save_grid(pipe, out: Path, step: int, prompts: list[str], seed: int, steps: int, size: int) -> Path:
    """out/validation/step-000N.png; the unet is put in eval mode for rendering and restored after."""
    seeds = [seed, seed + 1]
    was_training = pipe.unet.training
    pipe.unet.eval()
    try:
        images = render(pipe, prompts, seeds, steps, size)
    finally:
        pipe.unet.train(was_training)
    path = Path(out) / "validation" / f"step-{step:06d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    grid(images, prompts, seeds, f"step {step}").save(path)
    return path
