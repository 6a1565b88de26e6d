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
    """A labelled PIL grid: a title line, then per prompt its text (wrapped, never cut), one picture per seed and
    the seeds beneath. Labels sit beside the pictures, never on them, in Pillow's scalable font at 12 px: the
    bitmap default drawn over a 64 px picture was unreadable."""
    import textwrap

    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=12)
    w, h = images[0][0].size
    cell_w, line_h = max(w, 96), 15
    width = cell_w * len(seeds)
    labels = [textwrap.wrap(prompt, max(12, width // 7)) or [""] for prompt in prompts]
    sheet = Image.new("RGB", (width, line_h + sum((len(lines) + 1) * line_h + h for lines in labels)), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((2, 1), title, fill="black", font=font)
    top = line_h
    for row, lines in zip(images, labels):
        for k, line in enumerate(lines):
            draw.text((2, top + k * line_h + 1), line, fill="black", font=font)
        top += len(lines) * line_h
        for j, (image, seed) in enumerate(zip(row, seeds)):
            sheet.paste(image, (j * cell_w, top))
            draw.text((j * cell_w + 2, top + h + 1), f"seed {seed}", fill="#444", font=font)
        top += h + line_h
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
