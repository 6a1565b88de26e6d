"""The training run's admin form: the common TrainConfig settings as fields generated from the dataclass
(type, default, help), the rest as TOML; TrainConfig's ConfigError lands on the field it names."""
import dataclasses
import tomllib
import typing

from django import forms

from generator.models import AIModel
from training.dreambooth.config import FIELDS, ConfigError, TrainConfig
from training.forms import CONFIG_FIELDS
from training.models import RUN_MANAGED_SETTINGS, Dataset, TrainingRun

HELP = {
    "instance_prompt": "Blank: the dataset's instance prompt.",
    "rank": "LoRA rank (ignored for a full fine-tune).",
    "resolution": "Training side in pixels (multiple of 8).",
    "checkpoint_steps": "0: only when cancelled and at the end.",
    "validation_steps": "0: only the final validation grid.",
    "train_text_encoder": "LoRA (or full fine-tune) of the text encoder too.",
    "class_prompt": "Blank: the dataset's class prompt.",
    "l2sp_weight": "Pull toward the pretrained weights (L2-SP).",
    "l2_weight": "Plain L2 toward zero (for comparison).",
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


class TrainingRunForm(TrainConfigFields, forms.ModelForm):
    """The common TrainConfig settings as fields, the rest as TOML; TrainConfig's messages land on the field."""

    extra_settings = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 6, "cols": 60, "style": "font-family: monospace"}),
        label="Extra settings (TOML)",
        help_text="Any other TrainConfig setting, e.g. <code>lr_scheduler = \"cosine\"</code>, "
                  "<code>validation_prompts = [\"sks girl, red hat\"]</code>, <code>mixed_precision = \"bf16\"</code>.",
    )

    class Meta:
        model = TrainingRun
        fields = ["name", "dataset", "base_model", "method"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "dataset" in self.fields:
            self.fields["dataset"].queryset = Dataset.objects.filter(status=Dataset.Status.DONE)
            self.fields["dataset"].help_text = "A prepared (ready) dataset."
        if "base_model" in self.fields:
            self.fields["base_model"].queryset = AIModel.objects.exclude(kind=AIModel.Kind.LORA)
            self.fields["base_model"].help_text = "A local diffusers folder (SD 1.x / 2.x)."
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
        config = {name: cleaned[name] for name in CONFIG_FIELDS
                  if name not in self.errors and cleaned.get(name) not in (None, "")}
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
