"""Model loading for management commands: the engine's loader with the site's pickle policy and one-line errors."""
from django.conf import settings
from django.core.management.base import CommandError


def load_for_command(source: str, options: dict, *, lora=None, lora_scale: float = 1.0, name=None):
    """load_pipeline(source) honouring --allow-pickle / RETROPORTAL_ALLOW_PICKLE and --config-dir.

    A ModelLoadError becomes a CommandError, which Django prints as one line and exits non-zero.
    """
    from generator.engine.loading import ModelLoadError, load_pipeline

    try:
        return load_pipeline(
            source,
            allow_pickle=options["allow_pickle"] or settings.RETROPORTAL_ALLOW_PICKLE,
            config_dir=options["config_dir"],
            lora=lora,
            lora_scale=lora_scale,
            name=name,
        )
    except ModelLoadError as e:
        raise CommandError(str(e)) from e
