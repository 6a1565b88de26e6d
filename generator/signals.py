"""Delete an image's file from storage once its row is gone (site, admin, or a cascade from user/job)."""
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from generator.models import GeneratedImage


@receiver(post_delete, sender=GeneratedImage, dispatch_uid="generator.delete_image_file")
def delete_image_file(sender, instance, **kwargs):
    if instance.file and instance.file.name:
        storage, name = instance.file.storage, instance.file.name
        transaction.on_commit(lambda: storage.delete(name))  # only once the delete is committed
