"""Generation with a loaded model: seeds, creative controls, progress and previews, cancellation, metadata.

Reproducibility contract: image i of a job uses seed + i with its own torch.Generator, and images are
generated one at a time, so image i can be regenerated alone (seed + i, 1 image) and the same
seed + parameters + device give pixel-identical images. Batching images into one UNet call would be
a little faster but would tie each image's pixels to its batch neighbours' kernels. With a variation
(variation_strength > 0) every image keeps `seed` and image i uses variation_seed + i: N variations
of one picture, which is what a "Vary" button asks for.

The passes themselves (txt2img, img2img, inpainting, hires fix) are in `passes`; the sampling loop in
`denoise`; LoRA mixing in `loras`; translation in `translate`; previews in `preview`.
"""
import inspect
import secrets
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from PIL import Image

from .generation_info import LoraInfo, PictureInfo, Translation, extra_fields, prompt_line
from .infotext import encode_png, format_infotext
from .loading import LoadedModel
from .loras import mixed_loras
from .param_checks import HIRES_UPSCALERS
from .params import GenerationParams, Limits, ParamError
from .passes import draw, prepare
from .preview import previewer_for
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
    variation_seed: int | None = None


@dataclass
class GenerationResult:
    pictures: list[GeneratedPicture]
    warnings: list[str] = field(default_factory=list)
    seed: int = 0  # seed of image 0 (the random one chosen when params.seed was -1)
    translated_prompt: str = ""  # the English prompts the model saw, when params.translate was set
    translated_negative_prompt: str = ""


@dataclass
class Progress:
    """Where a job is: image `image` of `images` (1-based), step `step` of `steps` within it, `done` of
    `total` over the job; `preview` is a cheap RGB picture of the current latents when one was made."""

    image: int
    images: int
    step: int
    steps: int
    done: int
    total: int
    preview: Image.Image | None = None


def random_seed(num_images: int = 1) -> int:
    """A fresh seed such that seed + num_images - 1 still fits A1111's 32-bit seed range."""
    return secrets.randbelow(2**32 - num_images + 1)


def with_scheduler(pipe, scheduler):
    """A new pipeline object sharing `pipe`'s modules (no copy, no reload) but with `scheduler`.

    Kept for callers that run a stock diffusers pipeline beside ours (benchmarks, tests).
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


def _fused_lora(model: LoadedModel) -> list[LoraInfo]:
    """The LoRA a registry entry fused into the model at load time, for the infotext."""
    return [LoraInfo(model.lora_alias, model.lora_hash, model.lora_scale)] if model.lora else []


def _guidance_warnings(params: GenerationParams) -> list[str]:
    if params.negative_prompt and params.guidance_scale <= 1:
        return [f"negative prompt has no effect at CFG scale {params.guidance_scale:g} (guidance needs > 1)"]
    return []


def _check_upscaler(params: GenerationParams, limits: Limits, upscaler) -> None:
    """Validate params, the name of the upscaler handed in counting as known; a job that names an upscaler
    model must be handed that model (the caller loads it: the worker from its cache, the CLI from the file)."""
    known = limits if upscaler is None else replace(limits, upscalers=(*limits.upscalers, upscaler.name))
    params.validate(known)
    if params.is_hires and params.hires_upscaler not in HIRES_UPSCALERS and \
            (upscaler is None or upscaler.name != params.hires_upscaler):
        raise ParamError("hires_upscaler", f"upscaler {params.hires_upscaler!r} was not loaded for this job; "
                                           "load it (upscalers.load_upscaler) or use Lanczos")


def _translate(params: GenerationParams, translator) -> Translation | None:
    if not params.translate:
        return None
    if translator is None:
        raise ParamError("translate", "translation is off on this server: an admin sets RETROPORTAL_TRANSLATE_MODEL "
                                      "(e.g. Helsinki-NLP/opus-mt-id-en); send translate='' meanwhile")
    texts = [params.prompt] + ([params.negative_prompt] if params.negative_prompt else [])
    english = translator(texts)
    return Translation(english[0], english[1] if params.negative_prompt else "", params.translate)


class _Tracker:
    """Turns scheduler steps of each pass into the user's step counts, previews and cancellation."""

    def __init__(self, params, on_step, on_progress, should_cancel, previewer, preview_every):
        self.params, self.on_step, self.on_progress = params, on_step, on_progress
        self.should_cancel, self.previewer, self.preview_every = should_cancel, previewer, preview_every
        self.per_image = params.steps_per_image()
        self.total = self.per_image * params.num_images
        self.image = 0
        self.reported = 0

    def __call__(self, pass_name: str, i: int, n: int, latents: torch.Tensor) -> None:
        # Multistep schedulers may run a different number of model calls than steps (PNDM runs steps + 1):
        # map the scheduler's position onto the pass's step count so step/steps are exact.
        p = self.params
        pass_steps, offset = (p.base_steps(), 0) if pass_name == "base" else (p.hires_pass_steps(), p.base_steps())
        step = offset + min(-(-(i + 1) * pass_steps // n), pass_steps)
        done = self.image * self.per_image + step
        if done > self.reported:
            self.reported = done
            if self.on_step is not None:
                self.on_step(done, self.total)
            if self.on_progress is not None:
                wants = self.previewer is not None and (step % self.preview_every == 0 or step == self.per_image)
                preview = self.previewer(latents) if wants else None
                self.on_progress(Progress(self.image + 1, p.num_images, step, self.per_image, done, self.total,
                                          preview))
        if self.should_cancel is not None and self.should_cancel():
            raise GenerationCancelled(f"cancelled at step {done} of {self.total}")


def generate(
    model: LoadedModel,
    params: GenerationParams,
    *,
    on_step: Callable[[int, int], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    limits: Limits = Limits(),
    translator: Callable[[list[str]], list[str]] | None = None,
    preview_every: int = 2,
    allow_pickle: bool = False,
    upscaler=None,
) -> GenerationResult:
    """Generate params.num_images images; see the module docstring for the seed contract.

    on_step(k, total) is called after each denoising step, k counting over all images and passes
    (total = params.total_steps()). on_progress(Progress) likewise, with a preview every
    `preview_every` steps and at each image's last step. should_cancel() is polled at every step; when
    it returns True the run stops and GenerationCancelled is raised. Params are validated first
    (ParamError); `translator` maps texts to English for params.translate; `upscaler` (upscalers.Upscaler)
    is the model params.hires_upscaler names, when it names one.
    """
    _check_upscaler(params, limits, upscaler)
    seed = params.seed if params.seed >= 0 else random_seed(params.num_images)
    variation_base = None
    if params.variation_strength > 0:
        variation_base = params.variation_seed if params.variation_seed >= 0 else random_seed(params.num_images)
    translation = _translate(params, translator)
    prompt = translation.prompt if translation else params.prompt
    negative = translation.negative_prompt if translation else params.negative_prompt
    pipe = model.pipeline
    config = pipe.scheduler.config
    sdxl = model.architecture == "sdxl"
    previewer = previewer_for(pipe, model.device) if on_progress is not None and preview_every else None
    tracker = _Tracker(params, on_step, on_progress, should_cancel, previewer, max(1, preview_every))
    sampler, schedule_type = SAMPLER_LABELS[params.scheduler]
    pictures = []
    # LoRA adapters are created outside inference mode (peft makes parameters), the drawing inside it.
    with mixed_loras(model, params.loras, allow_pickle) as mixed, torch.inference_mode():
        prompts = prompt_inputs(pipe, prompt, negative, model.architecture, model.device)
        prepared = prepare(pipe, params, model.device)
        loras = _fused_lora(model) + mixed
        for i in range(params.num_images):
            if should_cancel is not None and should_cancel():
                raise GenerationCancelled(f"cancelled before image {i + 1} of {params.num_images}")
            tracker.image = i
            image_seed, variation_seed = (seed + i, None) if variation_base is None else (seed, variation_base + i)
            image = draw(pipe, prompts.kwargs, params, prepared, image_seed, variation_seed,
                         lambda: make_scheduler(params.scheduler, config), sdxl, tracker,
                         upscaler if params.hires_upscaler not in HIRES_UPSCALERS else None)
            info = PictureInfo(loras, variation_seed, translation)
            infotext = format_infotext(
                prompt_line(prompt, loras), negative, params.steps, sampler, params.guidance_scale, image_seed,
                params.width, params.height, model.model_hash, model.name,  # A1111: the base size (+ Hires upscale)
                extra_fields(params, info, params.prompt, params.negative_prompt), schedule_type,
            )
            pictures.append(GeneratedPicture(image, image_seed, infotext, encode_png(image, infotext), i,
                                             variation_seed))
    return GenerationResult(pictures, prompts.warnings + _guidance_warnings(params), seed,
                            translation.prompt if translation else "",
                            translation.negative_prompt if translation else "")
