from django.apps import AppConfig


class GalleryConfig(AppConfig):
    """Explore, likes, collections, tags, profiles, model pages, bulk actions and reports over generator's images."""

    name = "gallery"
    default_auto_field = "django.db.models.BigAutoField"
