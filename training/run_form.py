"""The training run's admin form: the common TrainConfig settings as fields generated from the dataclass
(type, default, help), the rest as TOML; TrainConfig's ConfigError lands on the field it names."""
import dataclasses
import tomllib
import typing

from django import forms
from django.utils.html import format_html, format_html_join

from generator.models import AIModel
from training.dreambooth.config import FIELDS, ConfigError, TrainConfig
from training.dreambooth.presets import PRESETS, preset_settings
from training.forms import CONFIG_FIELDS
from training.models import RUN_MANAGED_SETTINGS, Dataset, TrainingRun, base_native_size

HELP = {
    "instance_prompt": "Blank: the dataset's instance prompt.",
    "rank": "LoRA rank (ignored for a full fine-tune).",
    "resolution": "Training side in pixels (multiple of 8). Blank: the base model's native size.",
    "checkpoint_steps": "0: only when cancelled and at the end.",
    "validation_steps": "0: only the final validation grid.",
    "train_text_encoder": "LoRA (or full fine-tune) of the text encoder too.",
    "caption_tag_dropout": "Share of each caption's comma-separated tags left out per step (kohya's "
                           "caption_tag_dropout_rate; e.g. 0.2); tags holding the instance prompt are kept.",
    "class_prompt": "Blank: the dataset's class prompt.",
    "l2sp_weight": "Pull toward the pretrained weights (L2-SP).",
    "l2_weight": "Plain L2 toward zero (for comparison; on a LoRA it holds the adapter near zero, so it learns "
                 "next to nothing: use L2-SP).",
}
FORM_FIELD = {bool: forms.BooleanField, int: forms.IntegerField, float: forms.FloatField}


def config_form_field(name: str) -> forms.Field:
    """The form field for a TrainConfig setting: its type, TrainConfig's default as the initial value."""
    kind = typing.get_type_hints(TrainConfig)[name]
    default = FIELDS[name].default
    field = FORM_FIELD.get(kind, forms.CharField)
    extra = {"max_length": 300} if field is forms.CharField else {}
    initial = None if default is dataclasses.MISSING else default
    return field(required=False, initial=initial, help_text=HELP.get(name, ""), **extra)


TrainConfigFields = type("TrainConfigFields", (forms.Form,), {n: config_form_field(n) for n in CONFIG_FIELDS})


def preset_help() -> str:
    """Each preset's label and what it measured (training/dreambooth/presets.py), for the preset choice."""
    return format_html(
        "Fills the preset's settings; a field you change from the value shown, and the TOML box, still win.<br>{}",
        format_html_join("<br>", "<strong>{}</strong>: {}", ((p.label, p.help) for p in PRESETS.values())))


class TrainingRunForm(TrainConfigFields, forms.ModelForm):
    """The common TrainConfig settings as fields, the rest as TOML; TrainConfig's messages land on the field.
    Choosing a preset fills the settings it names, except those the admin changed (Form.changed_data); the run
    keeps its name, so the registered model takes its recommended generation defaults."""

    preset = forms.ChoiceField(
        required=False, choices=[("", "None: the settings below")] + [(p.name, p.label) for p in PRESETS.values()],
        help_text=preset_help(),
    )

    extra_settings = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 6, "cols": 60, "style": "font-family: monospace"}),
        label="Extra settings (TOML)",
        help_text="Any other TrainConfig setting, e.g. <code>lr_scheduler = \"cosine\"</code>, "
                  "<code>validation_prompts = [\"sks girl, red hat\"]</code>, <code>mixed_precision = \"bf16\"</code>.",
    )

    class Meta:
        model = TrainingRun
        fields = ["name", "dataset", "base_model", "method", "preset"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "dataset" in self.fields:
            self.fields["dataset"].queryset = Dataset.objects.filter(status=Dataset.Status.DONE)
            self.fields["dataset"].help_text = "A prepared (ready) dataset."
        if "base_model" in self.fields:
            self.fields["base_model"].queryset = AIModel.objects.pipelines().exclude(kind=AIModel.Kind.LORA)
            self.fields["base_model"].help_text = "A local diffusers folder (SD 1.x / 2.x)."
            sizes = ", ".join(f"{m.name} {base_native_size(m)} px" for m in self.fields["base_model"].queryset[:8])
            self.fields["resolution"].help_text = HELP["resolution"].rstrip(".") + (f" ({sizes})." if sizes else ".")
        self.fields["resolution"].initial = None  # blank: follows the base model (TrainingRun.settings_values)
        self.fields["resolution"].widget.attrs["placeholder"] = str(base_native_size(self.instance.base_model
                                                                                     if self.instance.base_model_id else None))
        config = dict(self.instance.config or {})
        for name in CONFIG_FIELDS:
            if name in config:
                self.fields[name].initial = config.pop(name)
        for name in ("instance_prompt", "class_prompt"):
            self.fields[name].initial = self.fields[name].initial or ""
        if config:
            import tomli_w

            self.fields["extra_settings"].initial = tomli_w.dumps(config)
        if self.instance.pk and self.instance.is_active:
            for field in self.fields.values():
                field.disabled = True

    def clean(self):
        cleaned = super().clean()
        chosen = cleaned.get("preset") if "preset" in self.changed_data else None  # kept on an edit: filled before
        preset = {k: v for k, v in preset_settings(chosen).items() if k not in self.changed_data}
        if "method" in preset:
            cleaned["method"] = preset.pop("method")
        config = {name: cleaned[name] for name in CONFIG_FIELDS
                  if name not in self.errors and name not in preset and cleaned.get(name) not in (None, "")}
        config.update(preset)
        if config.get("with_prior_preservation") and not config.get("class_prompt") and cleaned.get("dataset"):
            if cleaned["dataset"].class_prompt:
                config["class_prompt"] = cleaned["dataset"].class_prompt
        extra = self._extra(cleaned.get("extra_settings") or "")
        if extra is None:
            return cleaned
        for key in extra:
            if key in CONFIG_FIELDS or key == "method":
                self.add_error("extra_settings", f"{key}: set it with its own field above, not here")
                return cleaned
        managed = sorted(set(extra) & set(RUN_MANAGED_SETTINGS))
        if managed:
            self.add_error("extra_settings", f"{', '.join(managed)}: set by the run itself "
                                             "(the base model, dataset and output folder)")
            return cleaned
        config.update(extra)
        if self.errors or not cleaned.get("dataset") or not cleaned.get("base_model"):
            return cleaned
        self.instance.config = config
        self.instance.method = cleaned.get("method") or self.instance.method
        self.instance.dataset, self.instance.base_model = cleaned["dataset"], cleaned["base_model"]
        self.instance._config_validated = True
        try:
            self.instance.train_config()
        except ConfigError as exc:  # on the field it names; settings from the TOML box on that box
            if exc.field in CONFIG_FIELDS or exc.field in ("method", "dataset", "base_model"):
                self.add_error(exc.field, str(exc))
            elif exc.field is None or exc.field in extra or exc.field == "config":
                self.add_error("extra_settings", str(exc))
            else:
                self.add_error(None, str(exc))
        return cleaned

    def _extra(self, text: str) -> dict | None:
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            self.add_error("extra_settings", f"not valid TOML: {exc}")
            return None
