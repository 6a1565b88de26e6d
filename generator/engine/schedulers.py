"""Scheduler (sampler) names users pick, mapped to diffusers scheduler classes.

A model ships one scheduler config; users pick the sampler per request. We build a fresh scheduler
from the model's config every call, so the pipeline object itself is never left in a changed state
and its `prediction_type` (epsilon vs v-prediction, a property of the weights) is always kept.
"""
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    PNDMScheduler,
    UniPCMultistepScheduler,
)

from .params import SCHEDULER_NAMES, ParamError
from .sampler_labels import SAMPLER_LABELS  # noqa: F401  (re-exported: generate.py reads it here)

# name -> (class, extra config overrides)
_SCHEDULERS = {
    "pndm": (PNDMScheduler, {"skip_prk_steps": True}),  # PLMS only, as SD ships it; PRK needs >= 4 steps
    "ddim": (DDIMScheduler, {}),
    "euler": (EulerDiscreteScheduler, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
    "dpmpp_2m": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False},
    ),
    "dpmpp_2m_karras": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    "unipc": (UniPCMultistepScheduler, {}),
}

if not set(_SCHEDULERS) == set(SCHEDULER_NAMES) == set(SAMPLER_LABELS):
    raise ImportError("schedulers.py and params.SCHEDULER_NAMES disagree; add the new name to both")


def make_scheduler(name: str, config):
    """A new scheduler `name` built from a model's scheduler `config` (its prediction_type is kept).

    `config` is `pipe.scheduler.config` (a FrozenDict) or a plain dict. Unknown names raise
    ParamError('scheduler', ...) listing the valid ones, like GenerationParams.validate does.
    """
    if name not in _SCHEDULERS:
        raise ParamError("scheduler", f"unknown scheduler {name!r}; valid: {', '.join(SCHEDULER_NAMES)}")
    cls, overrides = _SCHEDULERS[name]
    merged = {**dict(config), **overrides}
    # Some saved configs carry options that only make sense for their own class (e.g. PNDM's
    # skip_prk_steps); from_config ignores unknown keys, which is what we want.
    return cls.from_config(merged)
