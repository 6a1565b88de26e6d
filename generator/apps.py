from django.apps import AppConfig


class GeneratorConfig(AppConfig):
    name = "generator"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from generator import signals  # noqa: F401  (connects the image-file cleanup)
