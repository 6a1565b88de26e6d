"""Named training recipes: a preset is a set of TrainConfig settings found to work, with what was measured.

A preset fills the settings it names; a TOML file and explicit flags (or form fields) still win over it, so a
preset is a starting point, not a lock. The base model, the dataset, the output folder and the resolution are
never part of a preset: they follow the run (the resolution defaults from the base model's native size).
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    label: str
    help: str  # what it does and what it measured, shown beside the choice
    settings: dict  # TrainConfig fields
    # How the trained model draws best (GenerationParams names: steps, guidance_scale): the model it trains is
    # registered with these as its defaults, as Civitai's "recommended settings" travel with a checkpoint.
    generation: dict = dataclasses.field(default_factory=dict)


RETRO_STYLE = Preset(
    name="retro-style",
    label="Retro style — recommended",
    help=("LoRA rank 8 on the UNet (text encoder frozen, as SD's CLIP already knows the style's words), learning "
          "rate 1e-3, 1,500 steps, L2-SP 0.01 toward the base, prior preservation with 100 captioned class pictures "
          "('a portrait of a person'), instance prompt 'retro anime style'. Measured on the mini-world base v10 with "
          "50 retro pictures showing every scene equally often, 70% of them captioned in Bahasa Indonesia (manage.py "
          "miniworld_bench --indonesian 0.7 --backgrounds balanced; 100 held-out prompts per set at CFG 3): style "
          "adoption 1.00 for the caption template and English paraphrases, 0.96 in Bahasa Indonesia (caption "
          "part of your set in the language your users prompt in), gender 1.00, background 0.91 (0.90 on 300 "
          "prompts), hair style 0.91, prior preservation 1.00; weakest: accessory 0.85. A set skewed to one scene "
          "(60% garden, base v7) bound the style less (0.87 at CFG 4). The trained model is registered with a "
          "default CFG scale of 3 (change it under Models): at CFG 4 (base v9) backgrounds fell to 0.76, and at CFG 7 "
          "(base v8) the style held but the pictures turned muddy, most of all for prompts that name only the person. "
          "Without L2-SP (base v4): fidelity 0.57."),
    settings={"method": "lora", "rank": 8, "learning_rate": 1e-3, "adam_weight_decay": 0.0,
              "train_text_encoder": False, "max_steps": 1500, "l2sp_weight": 0.01,
              "with_prior_preservation": True, "class_prompt": "a portrait of a person", "num_class_images": 100,
              "instance_prompt": "retro anime style"},
    generation={"guidance_scale": 3.0},
)

PRESETS: dict[str, Preset] = {p.name: p for p in (RETRO_STYLE,)}


def preset_settings(name: str | None) -> dict:
    """The settings of preset `name` ({} for None); ValueError naming the known presets for anything else."""
    if not name:
        return {}
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return dict(PRESETS[name].settings)


def recommended_generation(name: str | None, base: dict) -> dict:
    """How a model trained with preset `name` draws: `base` (its base model's steps and guidance_scale; None = the
    site's), with the preset's recommendations over them."""
    preset = PRESETS.get(name or "")
    return {**base, **(preset.generation if preset else {})}
