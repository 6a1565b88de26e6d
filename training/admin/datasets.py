"""Datasets in the Django admin: upload pictures or zips, watch the preparation, read its summary.

Prepared files are served by a staff-only view inside this admin (media has no public URL).
"""
from django.contrib import admin, messages
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html

from training import datasets
from training.admin.files import SERVED_SUFFIXES, serve_file
from training.forms import DatasetAdminForm
from training.models import Dataset, DatasetImage


class DatasetImageInline(admin.TabularInline):
    model = DatasetImage
    extra = 0
    can_delete = False
    fields = ["thumbnail", "output_name", "source_name", "caption", "width", "height", "bucket"]
    readonly_fields = fields
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="picture")
    def thumbnail(self, image: DatasetImage):
        url = reverse("admin:training_dataset_file", args=[image.dataset_id, image.output_name])
        return format_html('<img src="{}" alt="{}" style="max-width:96px;max-height:96px">', url, image.output_name)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    form = DatasetAdminForm
    inlines = [DatasetImageInline]
    list_display = ["name", "status", "progress", "kept_count", "duplicate_count", "rejected_count",
                    "skipped_count", "resolution", "mode", "updated_at"]
    list_filter = ["status", "mode"]
    search_fields = ["name", "instance_prompt"]
    readonly_fields = ["summary", "progress", "created_at", "updated_at", "prepared_at"]
    actions = ["prepare_again"]
    fieldsets = [
        (None, {"fields": ["name", "instance_prompt", "class_prompt", "upload", "prepare_now"]}),
        ("Preparation", {"fields": ["resolution", "mode", "min_size"]}),
        ("Result", {"fields": ["summary", "progress", "created_at", "updated_at", "prepared_at"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["name"] if obj else [])  # the name is the folder: fixed once created

    @admin.display(description="progress")
    def progress(self, dataset: Dataset) -> str:
        return f"{dataset.progress_done}/{dataset.progress_total}" if dataset.progress_total else "—"

    @admin.display(description="summary")
    def summary(self, dataset: Dataset):
        if dataset.pk is None:
            return "Saved datasets are prepared on the 'training' queue; the result appears here."
        records = (dataset.manifest or {}).get("records", [])
        ready = dataset.status == Dataset.Status.DONE and dataset.contact_sheet_path.is_file()
        return render_to_string("training/dataset_summary.html", {
            "dataset": dataset,
            "counts": list(dataset.counts().items()),
            "left_out": [r for r in records if r["status"] in ("rejected", "skipped", "duplicate")],
            "contact_sheet_url": self._file_url(dataset, "contact_sheet.png") if ready else "",
            "manifest_url": self._file_url(dataset, "manifest.json") if ready else "",
        })

    def _file_url(self, dataset: Dataset, rel: str) -> str:
        version = int(dataset.prepared_at.timestamp()) if dataset.prepared_at else 0
        return reverse("admin:training_dataset_file", args=[dataset.pk, rel]) + f"?v={version}"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        dataset = self.get_object(request, object_id)
        if dataset is not None:
            datasets.reconcile(dataset)
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        files = form.cleaned_data.get("upload") or []
        try:
            stored = datasets.add_uploads(obj, files)
        except datasets.UploadRefused as exc:
            Dataset.objects.filter(pk=obj.pk).update(status=Dataset.Status.FAILED, error=str(exc))
            self.message_user(request, f"Upload refused: {exc}", messages.ERROR)
            return
        if stored:
            self.message_user(request, f"{len(stored)} files stored in the originals of {obj.name}.")
        if form.cleaned_data.get("prepare_now") or stored:
            self._enqueue(request, obj)

    def _enqueue(self, request, dataset: Dataset) -> None:
        if datasets.enqueue_preparation(dataset):
            self.message_user(request, f"{dataset.name}: preparation queued on the 'training' queue.")
        else:
            self.message_user(request, f"{dataset.name} is already being prepared.", messages.WARNING)

    @admin.action(description="Prepare selected datasets again")
    def prepare_again(self, request, queryset):
        for dataset in queryset:
            self._enqueue(request, dataset)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        obj.remove_folder()

    def delete_queryset(self, request, queryset):
        datasets = list(queryset)
        super().delete_queryset(request, queryset)
        for dataset in datasets:
            dataset.remove_folder()

    def get_urls(self):
        file_view = self.admin_site.admin_view(self.file_view)
        return [
            path("<int:pk>/file/<path:rel>", file_view, name="training_dataset_file"),
        ] + super().get_urls()

    def file_view(self, request, pk: int, rel: str):
        """A prepared file (contact sheet, manifest, picture, caption) for staff allowed to view datasets."""
        dataset = Dataset.objects.filter(pk=pk).first()
        if dataset is None or not self.has_view_permission(request, dataset):
            raise Http404("no such dataset")
        return serve_file(dataset.prepared_dir, rel, SERVED_SUFFIXES, "private, max-age=60")
