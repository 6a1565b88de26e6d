"""Delete an image's file from storage once its row is gone (site, admin, or a cascade from user/job);
store a new image's search vector (its job's prompt) once it is saved."""
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from generator.models import GeneratedImage


@receiver(post_delete, sender=GeneratedImage, dispatch_uid="generator.delete_image_file")
def delete_image_file(sender, instance, **kwargs):
    if instance.file and instance.file.name:
        storage, name = instance.file.storage, instance.file.name
        transaction.on_commit(lambda: storage.delete(name))  # only once the delete is committed


@receiver(post_save, sender=GeneratedImage, dispatch_uid="generator.image_search_vector")
def store_search_vector(sender, instance, created, raw=False, **kwargs):
    if created and not raw:  # the prompt is the job's and never changes afterwards
        GeneratedImage.objects.filter(pk=instance.pk).update_search_vectors()
