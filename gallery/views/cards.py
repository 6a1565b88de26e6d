"""The thumbnail-grid list shared by Explore, the gallery, the Liked tab, profiles, collections and model pages.

A page of cards costs a fixed number of queries whatever its size: the count, the page (with job, model and
owner joined), the viewer's likes among the page, and the page's tags.
"""
from django.views.generic import ListView

from gallery.filters import SORT_CHOICES, ImageFilter
from gallery.models import ImageTag, Like
from generator.models import AIModel, GeneratedImage

PER_PAGE_CHOICES = (24, 48, 96)
SINCE_CHOICES = [("day", "past day"), ("week", "past week"), ("month", "past month"), ("year", "past year")]


def decorate(images, user):
    """Give each picture of a page `liked` and `tag_names` (2 queries for the whole page)."""
    images = list(images)
    liked = Like.objects.liked_ids(user, images)
    tags = ImageTag.tags_by_image(images)
    for image in images:
        image.liked = image.pk in liked
        image.tag_names = tags.get(image.pk, [])
    return images


class CardListView(ListView):
    """A filterable, sortable, paginated grid of pictures; subclasses give `base_images()`."""

    context_object_name = "images"
    paginate_by = PER_PAGE_CHOICES[0]
    show_owner = True
    filterset = None
    default_sort = "new"  # without ?sort= (a search sorts by relevance)

    def base_images(self):
        raise NotImplementedError

    def visible(self):
        return GeneratedImage.objects.visible_to(self.request.user).for_cards()

    def get_paginate_by(self, queryset):
        try:
            wanted = int(self.request.GET.get("per_page", ""))
        except ValueError:
            return self.paginate_by
        return wanted if wanted in PER_PAGE_CHOICES else self.paginate_by

    def get_queryset(self):
        self.filterset = ImageFilter(self.request.GET, queryset=self.base_images(), default_sort=self.default_sort)
        return self.filterset.qs

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["images"] = decorate(ctx["images"], self.request.user)
        query = self.request.GET.copy()
        query.pop("page", None)
        ctx.update(
            filterset=self.filterset, filter_errors=self.filterset.clean_errors(), show_owner=self.show_owner,
            sort_choices=SORT_CHOICES, active_sort=self.filterset.active_sort, query_string=query.urlencode(),
            per_page_choices=PER_PAGE_CHOICES, since_choices=SINCE_CHOICES, model_names=AIModel.objects.pipelines()
            .filter(is_active=True).values_list("name", flat=True),
            searching=bool(self.request.GET.get("q", "").strip()),
        )
        return ctx
