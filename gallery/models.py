"""Likes, collections (boards), tags and reports: what people do with pictures once they exist.

Visibility stays in one place, `GeneratedImage.objects.visible_to(user)`: every queryset here that yields
pictures goes through it (CollectionQuerySet.images_for, Like lists, ...), so a picture unpublished or made
private disappears from every collection, profile and list at once.
"""
import re

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Now
from django.urls import reverse

from generator.models import GeneratedImage


# --------------------------------------------------------------------------- likes


class LikeQuerySet(models.QuerySet):
    def liked_ids(self, user, images) -> set:
        """Ids among `images` (a page of them) that `user` liked: one query for a whole page of cards."""
        if not user.is_authenticated:
            return set()
        return set(self.filter(user=user, image__in=[i.pk for i in images]).values_list("image_id", flat=True))


class Like(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="likes")
    image = models.ForeignKey(GeneratedImage, on_delete=models.CASCADE, related_name="likes")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = LikeQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "image"], name="one_like_per_user_and_image")]
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.user} likes {self.image_id}"

    @classmethod
    def set(cls, user, image, liked: bool) -> bool:
        """Like or unlike; idempotent and race-free: the unique constraint decides (an insert losing to a
        concurrent twin's is a no-op), and like_count moves only with a row really inserted or deleted."""
        with transaction.atomic():
            if liked:
                cls._add(user, image)
            else:
                cls._remove(user, image)
        return liked

    @classmethod
    def toggle(cls, user, image, tries: int = 5) -> bool:
        """Flip the like and return whether it is there now, without reading first: delete it if there, else
        insert it. An insert losing to a concurrent twin's means the twin liked first, so this toggle goes
        round again and unlikes: n concurrent toggles end as n serial ones would (a read-then-write let two
        double-click toggles both answer "liked"). Each lost round means another toggle committed, so after
        `tries` rounds the state it leaves is the answer."""
        for _ in range(tries):
            with transaction.atomic():
                if cls._remove(user, image):
                    return False
                if cls._add(user, image):
                    return True
        return cls.objects.filter(user=user, image=image).exists()

    @classmethod
    def _add(cls, user, image) -> bool:
        """Insert the like in a savepoint (a concurrent twin's insert wins: False) and count it."""
        try:
            with transaction.atomic():
                cls.objects.create(user=user, image=image)
        except IntegrityError:
            return False
        GeneratedImage.objects.filter(pk=image.pk).update(like_count=F("like_count") + 1)
        return True

    @classmethod
    def _remove(cls, user, image) -> bool:
        """Delete the like if there (a concurrent delete of it leaves nothing to delete: False) and uncount it."""
        deleted, _ = cls.objects.filter(user=user, image=image).delete()
        if deleted:
            GeneratedImage.objects.filter(pk=image.pk).update(like_count=F("like_count") - deleted)
        return bool(deleted)


# --------------------------------------------------------------------------- collections


class CollectionQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Public collections and, signed in, one's own (staff with the view permission: all)."""
        if not user.is_authenticated:
            return self.filter(is_public=True)
        if user.is_staff and user.has_perm("gallery.view_collection"):
            return self.all()
        return self.filter(models.Q(is_public=True) | models.Q(owner=user))

    def with_counts(self, user):
        """Each collection with `visible_count`: how many of its pictures `user` may see (no query per row).

        Counted per collection through its items, each checked by primary key against visible_to: a
        `COUNT(...) FILTER (WHERE image_id IN (visible pictures))` made PostgreSQL hash every visible picture
        (a sequential scan of 100,000 rows, 90 ms) for a profile listing one collection."""
        visible = GeneratedImage.objects.visible_to(user).filter(pk=models.OuterRef("image_id"))
        counts = (CollectionItem.objects.filter(collection=models.OuterRef("pk")).filter(models.Exists(visible))
                  .order_by().values("collection").annotate(n=models.Count("pk")).values("n"))
        return self.annotate(visible_count=Coalesce(models.Subquery(counts), 0))


class Collection(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="collections")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    is_public = models.BooleanField(default=False, help_text="Listed on your profile and readable by everyone.")
    images = models.ManyToManyField(GeneratedImage, through="CollectionItem", related_name="collections")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CollectionQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="collection_name_unique_per_owner")]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("collection-detail", args=[self.pk])

    def images_for(self, user):
        """The collection's pictures `user` may see, newest addition first (an unpublished one drops out)."""
        return (GeneratedImage.objects.visible_to(user).filter(collection_items__collection=self)
                .order_by("-collection_items__added_at", "pk"))

    def add(self, images) -> int:
        """Add pictures (already checked visible to the owner); ones already here are skipped. Returns added."""
        before = self.items.count()
        CollectionItem.objects.bulk_create([CollectionItem(collection=self, image=i) for i in images],
                                           ignore_conflicts=True)
        Collection.objects.filter(pk=self.pk).update(updated_at=Now())
        return self.items.count() - before


class CollectionItem(models.Model):
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey(GeneratedImage, on_delete=models.CASCADE, related_name="collection_items")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["collection", "image"], name="image_once_per_collection")]


# --------------------------------------------------------------------------- tags


TAG_MAX = 40


def normalise_tag(raw: str) -> str:
    """'  Red  Hair!! ' -> 'red-hair': lower case, words joined by '-', only letters, digits, '-' and '_'."""
    words = re.findall(r"[^\W]+", raw.lower().replace("_", " "))
    return "-".join(words)[:TAG_MAX].strip("-")


def parse_tags(text: str) -> list[str]:
    """Comma- or newline-separated tags, normalised, duplicates and empties dropped, order kept."""
    seen = []
    for part in re.split(r"[,\n]", text or ""):
        tag = normalise_tag(part)
        if tag and tag not in seen:
            seen.append(tag)
    return seen


class Tag(models.Model):
    name = models.SlugField(max_length=TAG_MAX, unique=True, allow_unicode=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ImageTag(models.Model):
    image = models.ForeignKey(GeneratedImage, on_delete=models.CASCADE, related_name="image_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="image_tags")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "tag"], name="tag_once_per_image")]

    @classmethod
    def set_tags(cls, image, names: list[str]):
        """Replace the picture's tags by `names` (normalised already)."""
        with transaction.atomic():
            Tag.objects.bulk_create([Tag(name=n) for n in names], ignore_conflicts=True)
            tags = list(Tag.objects.filter(name__in=names))
            cls.objects.filter(image=image).exclude(tag__in=tags).delete()
            cls.objects.bulk_create([cls(image=image, tag=t) for t in tags], ignore_conflicts=True)

    @classmethod
    def tags_by_image(cls, images) -> dict:
        """{image id: [tag names]} for a page of pictures, in one query."""
        out = {}
        for image_id, name in (cls.objects.filter(image__in=[i.pk for i in images]).order_by("tag__name")
                               .values_list("image_id", "tag__name")):
            out.setdefault(image_id, []).append(name)
        return out


# --------------------------------------------------------------------------- moderation


class Report(models.Model):
    class Reason(models.TextChoices):
        NSFW = "nsfw", "Sexual or violent content"
        MINOR = "minor", "Sexualises a minor"
        HATE = "hate", "Hateful or harassing"
        COPYRIGHT = "copyright", "Copies someone's work or likeness"
        SPAM = "spam", "Spam"
        OTHER = "other", "Something else"

    image = models.ForeignKey(GeneratedImage, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reports")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    details = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")

    class Meta:
        ordering = ["resolved_at", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["image", "reporter"], name="one_report_per_user_and_image")]

    def __str__(self):
        return f"{self.get_reason_display()} · {self.image_id}"
