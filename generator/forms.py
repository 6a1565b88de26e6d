"""The generation form. Limits are checked by GenerationParams.validate (the same check as API and CLI)."""
import json

from django import forms

from generator import inputs
from generator.creative_form import CREATIVE_FIELDS, CreativeFields
from generator.engine.params import SCHEDULER_NAMES, GenerationParams
from generator.models import AIModel
from generator.services import default_model, site_limits

_DEFAULTS = GenerationParams(prompt="x")
PARAM_FIELDS = ("prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height", "num_images",
                "scheduler")


class GenerateForm(CreativeFields):
    prompt = forms.CharField(
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Please enter your prompt here!", "autofocus": True}),
    )
    negative_prompt = forms.CharField(
        required=False, max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "What to leave out, e.g. blurry, extra fingers"}),
    )
    model = forms.CharField(required=False, widget=forms.Select())
    seed = forms.IntegerField(initial=-1, help_text="-1 picks a random seed; image i of a job uses seed + i.")
    steps = forms.IntegerField(initial=20)
    guidance_scale = forms.FloatField(initial=7.0, label="Guidance (CFG) scale")
    width = forms.IntegerField(initial=512)
    height = forms.IntegerField(initial=512)
    num_images = forms.IntegerField(initial=1, label="Number of images")
    # A plain field with a <select>: an unknown name gets GenerationParams' message, as in the API.
    scheduler = forms.CharField(initial="dpmpp_2m", widget=forms.Select(choices=[(n, n) for n in SCHEDULER_NAMES]))

    advanced_fields = ("negative_prompt", "steps", "guidance_scale", "scheduler")
    basic_names = ("model", "width", "height", "num_images")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        limits = site_limits()
        self.setup_creative(user, limits)
        models = list(AIModel.objects.drawable().select_related("parent")
                      .order_by("-is_default", "name"))
        self.fields["model"].widget.choices = [
            (m.name, m.name) for m in models
        ]
        # Each model starts at its own defaults (native size, steps, CFG); the page's JS follows the pick.
        self.model_defaults = {m.name: m.generation_defaults(limits) for m in models}
        self.model_hints = {name: defaults_line(values) for name, values in self.model_defaults.items()}
        self.model_architectures = {m.name: m.base_architecture for m in models}
        self.lora_models = [
            {"name": m.name, "architecture": m.base_architecture, "description": m.description[:120]}
            for m in models if m.kind == AIModel.Kind.LORA
        ]
        self.size_limits = {"min": limits.min_side, "max_width": limits.max_width, "max_height": limits.max_height,
                            "max_hires_scale": limits.max_hires_scale}
        default = default_model()
        if default is not None and not self.initial.get("model"):
            self.initial["model"] = default.name
            for name, value in default.generation_defaults(limits).items():
                self.initial.setdefault(name, value)
        picked = self.model_defaults.get(self.initial.get("model") or (default.name if default else ""))
        if picked:  # steps and CFG sit under Advanced: say here what the picked model draws with
            self.fields["model"].help_text = defaults_line(picked)
        attrs = {
            "seed": {"min": -1, "max": 2**32 - 1},
            "steps": {"min": 1, "max": limits.max_steps},
            "guidance_scale": {"min": 0, "max": limits.max_guidance, "step": 0.5},
            "width": {"min": limits.min_side, "max": limits.max_width, "step": 8},
            "height": {"min": limits.min_side, "max": limits.max_height, "step": 8},
            "num_images": {"min": 1, "max": limits.max_images},
        }
        for name, extra in attrs.items():
            self.fields[name].widget.attrs.update(extra)
        self.fields["width"].help_text = f"{limits.min_side}–{limits.max_width}, a multiple of 8."
        self.fields["height"].help_text = f"{limits.min_side}–{limits.max_height}, a multiple of 8."
        self.fields["steps"].help_text = f"1–{limits.max_steps}. More steps: slower, often finer."
        self.fields["num_images"].help_text = f"1–{limits.max_images}."

    def clean(self):
        """Every bad field at once: fields that already failed (missing, not a number) keep their own error,
        the others are checked by GenerationParams with defaults standing in for the failed ones."""
        data = super().clean()
        present = {name: data[name] for name in PARAM_FIELDS if name in data}
        present.update(self.creative_values(data))
        params = GenerationParams(**{**_DEFAULTS.as_dict(), **present})
        model = AIModel.objects.drawable().filter(name=data.get("model")).first() \
            if data.get("model") else default_model()
        errors = {**params.errors(self.limits), **(inputs.request_errors(model, params) if model else {})}
        for field, messages in errors.items():
            for message in messages:
                if field in present and field in self.fields:
                    self.add_error(field, message)
        if not errors and not self.errors and len([n for n in PARAM_FIELDS if n in present]) == len(PARAM_FIELDS):
            self.params = params
        return data

    def advanced(self):
        return [self[name] for name in self.advanced_fields]

    def hires_fields(self):
        return [self[name] for name in self.creative_groups["hires"]]

    def variation_fields(self):
        return [self[name] for name in self.creative_groups["variation"]]


def defaults_line(defaults: dict) -> str:
    """The picked model's own steps and CFG, under the model picker (static/js/site.js shows another model's)."""
    return f"Its defaults: {defaults['steps']} steps, CFG {defaults['guidance_scale']:g} (Advanced)."


def initial_from_job(job, seed=None, num_images=None) -> dict:
    """The form's fields as `job` had them (Reuse), LoRAs and the hires/variation settings included;
    the pictures are not carried over (Remix starts from a finished image instead)."""
    initial = {name: getattr(job, name) for name in PARAM_FIELDS}
    initial.update({name: getattr(job, name) for name in CREATIVE_FIELDS})
    initial["loras"] = json.dumps(job.loras or [])
    initial["translate"] = job.translate == "id"
    if seed is not None:
        initial["seed"] = seed
    if num_images is not None:
        initial["num_images"] = num_images
    if job.model.is_active:
        initial["model"] = job.model.name
    return initial
