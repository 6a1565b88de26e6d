"""The training admin's forms: dataset uploads, sweeps, and the run form's field list (the run form itself,
generated from TrainConfig, is training.run_form: it imports DreamBooth, so the admin loads it when used)."""
from django import forms

from training import datasets, sweeps
from training.models import Dataset, Sweep, base_native_size


class MultipleFileInput(forms.ClearableFileInput):
    """A file input that lets the browser pick several files (Django docs, 'Uploading multiple files')."""

    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(item, initial) for item in data if item]
        return [single(data, initial)] if data else []


class DatasetAdminForm(forms.ModelForm):
    upload = MultipleFileField(
        required=False,
        help_text="Pictures (png, jpg, webp, bmp, gif, tiff) with optional same-name .txt captions, or .zip archives.",
    )
    prepare_now = forms.BooleanField(
        required=False, initial=True, help_text="Prepare (again) after saving: needed after uploads or setting changes."
    )

    class Meta:
        model = Dataset
        fields = ["name", "instance_prompt", "class_prompt", "resolution", "mode", "min_size"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:  # a new dataset trains at the default model's size; nothing is upscaled
            size = base_native_size()
            self.initial.setdefault("resolution", size)
            self.initial.setdefault("min_size", size)

    def clean_upload(self):
        files = self.cleaned_data.get("upload") or []
        if not files and self.instance.pk is None:
            raise forms.ValidationError("Upload at least one picture or a zip archive.")
        try:
            datasets.check_uploads(files)
        except datasets.UploadRefused as exc:
            raise forms.ValidationError(str(exc)) from None
        return files


# The TrainConfig settings the run form (training.run_form) shows as fields, by admin fieldset; every other
# one goes in its TOML box. Here, not there, so the admin reads it without importing DreamBooth (torch).
CONFIG_FIELDSETS = {
    "Run": ("instance_prompt",),
    "Training": ("rank", "resolution", "max_steps", "learning_rate", "batch_size", "gradient_accumulation_steps",
                 "checkpoint_steps", "validation_steps", "seed", "train_text_encoder", "caption_tag_dropout"),
    "Prior preservation and regularization": ("with_prior_preservation", "class_prompt", "num_class_images",
                                              "prior_loss_weight", "l2sp_weight", "l2_weight"),
}
CONFIG_FIELDS = tuple(name for names in CONFIG_FIELDSETS.values() for name in names)


class SweepForm(forms.ModelForm):
    """The sweep TOML is read here (it names registered models and datasets); its 'name' key names the row."""

    class Meta:
        model = Sweep
        fields = ["name", "spec"]

    def clean(self):
        cleaned = super().clean()
        if "spec" in cleaned:
            try:
                self.instance.name = cleaned["name"] = sweeps.parse_sweep(cleaned["spec"], cleaned.get("name") or "sweep").name
            except sweeps.SweepError as exc:
                self.add_error("spec", str(exc))
        return cleaned
