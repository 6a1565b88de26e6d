"""Moderation: reports in the admin; unpublishing a reported picture removes it from every public place at once
(every page reads GeneratedImage.is_public through visible_to, nothing is cached)."""
from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone
from django.utils.html import format_html

from gallery.models import Collection, Report, Tag
from generator.models import GeneratedImage


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ("thumbnail", "reason", "image_prompt", "image_owner", "reporter", "is_public", "created_at",
                    "resolved_at")
    list_filter = ("reason", ("resolved_at", admin.EmptyFieldListFilter), "image__is_public")
    list_select_related = ("image", "image__job", "image__owner", "reporter")
    search_fields = ("image__job__prompt", "reporter__username", "image__owner__username", "details")
    readonly_fields = ("image", "reporter", "reason", "details", "created_at", "resolved_at", "resolved_by")
    actions = ("unpublish", "dismiss")

    @admin.display(description="picture")
    def thumbnail(self, report):
        return format_html('<a href="{}"><img src="{}" width="64" height="64" style="image-rendering:pixelated" '
                           'alt=""></a>', report.image.get_absolute_url(), report.image.get_file_url())

    @admin.display(description="prompt")
    def image_prompt(self, report):
        return report.image.job.prompt[:80]

    @admin.display(description="owner")
    def image_owner(self, report):
        return report.image.owner

    @admin.display(boolean=True, description="public")
    def is_public(self, report):
        return report.image.is_public

    @admin.action(description="Unpublish the reported pictures (and resolve their reports)")
    def unpublish(self, request, queryset):
        image_ids = list(queryset.values_list("image_id", flat=True))
        with transaction.atomic():
            count = GeneratedImage.objects.filter(pk__in=image_ids).update(is_public=False)
            Report.objects.filter(image_id__in=image_ids, resolved_at=None).update(
                resolved_at=timezone.now(), resolved_by=request.user)
        self.message_user(request, f"{count} picture(s) unpublished: gone from Explore, profiles, collections, "
                                   "model pages and the API for everyone but their owners.", messages.SUCCESS)

    @admin.action(description="Dismiss (keep the pictures published)")
    def dismiss(self, request, queryset):
        count = queryset.filter(resolved_at=None).update(resolved_at=timezone.now(), resolved_by=request.user)
        self.message_user(request, f"{count} report(s) dismissed.", messages.SUCCESS)


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "is_public", "updated_at")
    list_filter = ("is_public",)
    search_fields = ("name", "owner__username")
    raw_id_fields = ("owner",)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ("name",)
