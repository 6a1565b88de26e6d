"""The thumbnail-grid list shared by Explore, the gallery, the Liked tab, profiles, collections and model pages.

A page of cards costs a fixed number of queries whatever its size: the count and the page's ids (one query for
a search: CardPaginator), the page (with job, model and owner joined), the viewer's likes among the page, and
the page's tags.
"""
import uuid
from urllib.parse import urlencode

from django.urls import reverse
from django.views.generic import ListView

from gallery.filters import SORT_CHOICES, ImageFilter
from gallery.models import ImageTag, Like
from generator.models import AIModel, GeneratedImage
from generator.pagination import CardPaginator

PER_PAGE_CHOICES = (24, 48, 96)
SINCE_CHOICES = [("day", "past day"), ("week", "past week"), ("month", "past month"), ("year", "past year")]


def _url_for_any_image(name):
    """reverse() once, then the URL of `name` for any picture id by substitution: a card has four such links, and
    reverse() was about a tenth of a 24-card page's time under cProfile."""
    placeholder = str(uuid.UUID(int=0))
    pattern = reverse(name, args=[placeholder])
    return lambda pk: pattern.replace(placeholder, str(pk))


def shorten(text: str, limit: int) -> str:
    """truncatechars without its per-character Unicode pass (three a card were about a
    tenth of a page's time under cProfile)."""
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "\u2026"


def login_url_back(request) -> str:
    """The sign-in URL that returns to this page: where a signed-out visitor's Like and Collect links go."""
    return f"{reverse('login')}?{urlencode({'next': request.get_full_path()})}"


def decorate(images, user):
    """Give each picture of a page `liked`, `tag_names` (2 queries for the whole page), its links and its
    prompt shortened for the card."""
    images = list(images)
    liked = Like.objects.liked_ids(user, images)
    tags = ImageTag.tags_by_image(images)
    page_url, file_url, like_url = (_url_for_any_image(n) for n in ("image-detail", "image-file", "image-like"))
    profiles = {}
    for image in images:
        image.liked = image.pk in liked
        image.tag_names = tags.get(image.pk, [])
        image.page_url, image.file_url, image.like_url = page_url(image.pk), file_url(image.pk), like_url(image.pk)
        owner = image.owner.get_username()
        if owner not in profiles:
            profiles[owner] = reverse("profile", args=[owner])
        image.profile_url = profiles[owner]
        prompt = image.job.prompt
        image.prompt_caption, image.prompt_alt, image.prompt_short = (shorten(prompt, n) for n in (160, 80, 90))
    return images


class CardListView(ListView):
    """A filterable, sortable, paginated grid of pictures; subclasses give `base_images()`."""

    context_object_name = "images"
    paginator_class = CardPaginator
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
        searching = bool(self.request.GET.get("q", "").strip())
        ctx.update(
            filterset=self.filterset, filter_errors=self.filterset.clean_errors(), show_owner=self.show_owner,
            sort_choices=SORT_CHOICES, active_sort=self.filterset.active_sort, query_string=query.urlencode(),
            per_page_choices=PER_PAGE_CHOICES, since_choices=SINCE_CHOICES, model_names=AIModel.objects.pipelines()
            .filter(is_active=True).values_list("name", flat=True),
            searching=searching, implicit_sort="relevance" if searching else self.default_sort,
            login_next=login_url_back(self.request),
        )
        return ctx
