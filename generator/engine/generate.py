"""Text-to-image generation with a loaded model: seeds, schedulers, progress, cancellation, metadata.

Reproducibility contract: image i of a job uses seed + i with its own torch.Generator, and images are
generated one at a time, so image i can be regenerated alone (seed + i, 1 image) and the same
seed + parameters + device give pixel-identical images. Batching images into one UNet call would be
a little faster but would tie each image's pixels to its batch neighbours' kernels.
"""
import inspect
import secrets
from dataclasses import dataclass, field
from typing import Callable

import torch
from PIL import Image

from .infotext import encode_png, format_infotext
from .loading import LoadedModel
from .params import GenerationParams, Limits
from .prompts import prompt_inputs
from .schedulers import SAMPLER_LABELS, make_scheduler


class GenerationCancelled(Exception):
    """should_cancel() returned True; no images are returned for the job."""


@dataclass
class GeneratedPicture:
    image: Image.Image
    seed: int
    infotext: str
    png: bytes  # PNG bytes with the infotext in the `parameters` chunk
    index: int = 0


@dataclass
class GenerationResult:
    pictures: list[GeneratedPicture]
    warnings: list[str] = field(default_factory=list)
    seed: int = 0  # seed of image 0 (the random one chosen when params.seed was -1)


def random_seed(num_images: int = 1) -> int:
    """A fresh seed such that seed + num_images - 1 still fits A1111's 32-bit seed range."""
    return secrets.randbelow(2**32 - num_images + 1)


def with_scheduler(pipe, scheduler):
    """A new pipeline object sharing `pipe`'s modules (no copy, no reload) but with `scheduler`.

    Swapping `pipe.scheduler` in place would leak one request's sampler into the next (and race if
    two threads share the pipeline); a scheduler also keeps per-run state (timesteps, step index).
    Building a sibling pipeline costs microseconds and leaves the cached one untouched.
    """
    cls = type(pipe)
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {name: module for name, module in pipe.components.items() if name in accepted}
    kwargs["scheduler"] = scheduler
    for name in accepted:
        if name not in kwargs and name in pipe.config:
            kwargs[name] = pipe.config[name]
    sibling = cls(**kwargs)
    sibling.set_progress_bar_config(disable=True)
    return sibling


def lora_tag(model: LoadedModel) -> str:
    """A1111's `<lora:ALIAS:SCALE>`, which the prompt of an infotext carries to activate the LoRA there."""
    return f"<lora:{model.lora_alias}:{model.lora_scale:g}>" if model.lora else ""


def _infotext_extra(model: LoadedModel) -> dict:
    """A1111's `Lora hashes: "ALIAS: HASH"` for a fused LoRA (the tag itself goes into the prompt)."""
    return {"Lora hashes": f"{model.lora_alias}: {model.lora_hash}"} if model.lora else {}


def _guidance_warnings(params: GenerationParams) -> list[str]:
    if params.negative_prompt and params.guidance_scale <= 1:
        return [f"negative prompt has no effect at CFG scale {params.guidance_scale:g} (guidance needs > 1)"]
    return []


def generate(
    model: LoadedModel,
    params: GenerationParams,
    *,
    on_step: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    limits: Limits = Limits(),
) -> GenerationResult:
    """Generate params.num_images images; see the module docstring for the seed contract.

    on_step(k, total) is called after each denoising step, k counting over all images
    (total = steps * num_images). should_cancel() is polled at every step; when it returns True
    the run stops and GenerationCancelled is raised. Params are validated first (ParamError).
    """
    params.validate(limits)
    seed = params.seed if params.seed >= 0 else random_seed(params.num_images)
    pipe = with_scheduler(model.pipeline, make_scheduler(params.scheduler, model.pipeline.scheduler.config))
    prompts = prompt_inputs(pipe, params.prompt, params.negative_prompt, model.architecture, model.device)
    total = params.steps * params.num_images
    state = {"reported": 0, "image": 0}

    def on_step_end(pipeline, step, timestep, tensors):
        # Multistep schedulers may run a different number of model calls than `steps` (PNDM runs
        # steps + 1): map the scheduler's position onto the user's step count so k/total is exact.
        done_in_image = -(-(step + 1) * params.steps // pipeline.num_timesteps)
        k = state["image"] * params.steps + min(done_in_image, params.steps)
        if on_step is not None and k > state["reported"]:
            state["reported"] = k
            on_step(k, total)
        if should_cancel is not None and should_cancel():
            raise GenerationCancelled(f"cancelled at step {k} of {total}")
        return {}

    pictures = []
    for i in range(params.num_images):
        if should_cancel is not None and should_cancel():
            raise GenerationCancelled(f"cancelled before image {i + 1} of {params.num_images}")
        state["image"] = i
        image_seed = seed + i
        generator = torch.Generator(model.device).manual_seed(image_seed)
        with torch.inference_mode():
            image = pipe(
                **prompts.kwargs,
                num_inference_steps=params.steps,
                guidance_scale=params.guidance_scale,
                width=params.width,
                height=params.height,
                num_images_per_prompt=1,
                generator=generator,
                callback_on_step_end=on_step_end,
            ).images[0]
        sampler, schedule_type = SAMPLER_LABELS[params.scheduler]
        infotext = format_infotext(
            " ".join(filter(None, [params.prompt, lora_tag(model)])),
            params.negative_prompt,
            params.steps,
            sampler,
            params.guidance_scale,
            image_seed,
            params.width,
            params.height,
            model.model_hash,
            model.name,
            _infotext_extra(model),
            schedule_type,
        )
        pictures.append(GeneratedPicture(image, image_seed, infotext, encode_png(image, infotext), index=i))
    return GenerationResult(pictures, prompts.warnings + _guidance_warnings(params), seed)
