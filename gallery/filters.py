"""Search, filter and sort parameters shared by Explore, the gallery, profiles, model pages and the API.

    ?q=       words of the prompt (PostgreSQL full-text search: English stems and exact words; "phrase", -not, or)
    ?model=   model name          ?size=  WxH or N (square)        ?since=  YYYY-MM-DD, or day|week|month|year
    ?min_clip= CLIP score floor   ?tag=   one of the owner's tags  ?sort=   new|clip|likes (relevance with ?q=)
"""
import datetime as dt
import re

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone

from gallery.models import normalise_tag

SINCE_PRESETS = {"day": 1, "week": 7, "month": 30, "year": 365}
SORTS = {
    "new": ("-created_at", "index", "pk"),
    "clip": (F("clip_score").desc(nulls_last=True), "-created_at", "index", "pk"),
    "likes": ("-like_count", "-created_at", "index", "pk"),
    "relevance": ("-rank", "-created_at", "index", "pk"),
}
SORT_CHOICES = [("new", "Newest"), ("likes", "Most liked"), ("clip", "Best CLIP score"),
                ("relevance", "Best match (with a search)")]


def parse_size(value: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d{1,5})\s*(?:[x×*]\s*(\d{1,5}))?\s*", value or "")
    if not match:
        raise ValidationError(f"{value!r} is not a size; use WxH like 512x768, or one number for a square like 64")
    width = int(match.group(1))
    return width, int(match.group(2) or width)


def parse_since(value: str) -> dt.datetime:
    value = (value or "").strip().lower()
    if value in SINCE_PRESETS:
        return timezone.now() - dt.timedelta(days=SINCE_PRESETS[value])
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{value!r} is not a date; use YYYY-MM-DD like 2026-01-31, or day, week, month "
                              "or year") from None
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.timezone.utc)


class ImageFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_q", label="Search prompts", max_length=200)
    model = django_filters.CharFilter(field_name="job__model__name", label="Model", max_length=100)
    size = django_filters.CharFilter(method="filter_size", label="Size", max_length=12)
    since = django_filters.CharFilter(method="filter_since", label="Since", max_length=10)
    min_clip = django_filters.NumberFilter(field_name="clip_score", lookup_expr="gte", label="CLIP score at least")
    tag = django_filters.CharFilter(method="filter_tag", label="Tag", max_length=60)
    sort = django_filters.ChoiceFilter(choices=SORT_CHOICES, method="filter_sort", label="Sort", empty_label=None)

    class Meta:
        fields = []  # all declared above; the model comes from the queryset given

    def __init__(self, data=None, *args, default_sort="new", **kwargs):
        self.default_sort = default_sort
        super().__init__(data, *args, **kwargs)
        self.form.fields["sort"].required = False
        self.form.fields["size"].validators.append(parse_size)  # a bad value is a form error naming the field
        self.form.fields["since"].validators.append(parse_since)

    def clean_errors(self) -> list[str]:
        """Every bad parameter at once, each naming itself: ['size: '7x' is not a size; use ...', ...]."""
        return [f"{name}: {message}" for name, messages in self.errors.items() for message in messages]

    def filter_q(self, queryset, name, value):
        return queryset.search(value) if value.strip() else queryset

    def filter_size(self, queryset, name, value):
        width, height = parse_size(value)
        return queryset.filter(width=width, height=height)

    def filter_since(self, queryset, name, value):
        return queryset.filter(created_at__gte=parse_since(value))

    def filter_tag(self, queryset, name, value):
        return queryset.filter(image_tags__tag__name=normalise_tag(value))

    def filter_sort(self, queryset, name, value):
        return queryset  # ordering is applied last, in filter_queryset, once ?q= is known

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        return queryset.order_by(*SORTS[self.active_sort])

    @property
    def active_sort(self) -> str:
        """?sort= if given and valid; else relevance when searching, else the page's default."""
        data = getattr(self.form, "cleaned_data", None) or {}
        searching = bool((data.get("q") or "").strip())
        sort = data.get("sort") or ("relevance" if searching else self.default_sort)
        return self.default_sort if sort == "relevance" and not searching else sort
