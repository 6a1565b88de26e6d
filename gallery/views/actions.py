"""POST actions: like, report, tags, and the gallery's bulk actions (publish, unpublish, delete, collect, zip)."""
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from gallery.models import Collection, ImageTag, Like, Report, parse_tags
from gallery.zips import image_zip
from generator.models import GeneratedImage

BULK_MAX = 500


def back(request, fallback):
    """Where the form came from (?next= or the Referer, same site only), else `fallback`."""
    target = request.POST.get("next") or request.META.get("HTTP_REFERER", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect(fallback)


def _visible_image(request, pk):
    return get_object_or_404(GeneratedImage.objects.visible_to(request.user), pk=pk)


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@login_required
@require_POST
def like(request, pk):
    """Toggle (or set with liked=1/0) the viewer's like; answers JSON for the card's button, else redirects."""
    image = _visible_image(request, pk)
    wanted = request.POST.get("liked")
    liked = Like.set(request.user, image, wanted == "1") if wanted in ("0", "1") else Like.toggle(request.user, image)
    count = GeneratedImage.objects.values_list("like_count", flat=True).get(pk=image.pk)
    if _wants_json(request):
        return JsonResponse({"liked": liked, "like_count": count})
    return back(request, image)


@login_required
@require_POST
def report(request, pk):
    image = _visible_image(request, pk)
    reason = request.POST.get("reason", "")
    if not image.is_public or image.owner_id == request.user.pk:
        messages.error(request, "Only someone else's published picture can be reported.")
    elif reason not in Report.Reason.values:
        messages.error(request, "reason: choose one of " + ", ".join(Report.Reason.labels) + ".")
    else:
        try:
            Report.objects.create(image=image, reporter=request.user, reason=reason,
                                  details=request.POST.get("details", "")[:2000])
            messages.success(request, "Thank you: the moderators will look at this picture.")
        except IntegrityError:
            messages.info(request, "You already reported this picture.")
    return redirect(image)


@login_required
@require_POST
def set_tags(request, pk):
    image = get_object_or_404(GeneratedImage.objects.visible_to(request.user).filter(owner=request.user), pk=pk)
    tags = parse_tags(request.POST.get("tags", ""))[:20]
    ImageTag.set_tags(image, tags)
    messages.success(request, f"Tags: {', '.join(tags)}." if tags else "Tags removed.")
    return redirect(image)


BULK_ACTIONS = ("publish", "unpublish", "delete", "collect", "download")


def _uuids(values: list[str]) -> list[uuid.UUID]:
    out = []
    for value in values:
        try:
            out.append(uuid.UUID(value))
        except ValueError:
            continue
    return out


@login_required
@require_POST
def bulk(request):
    """Act on the selected pictures (`ids`). Publish/unpublish/delete touch only one's own; collect and
    download take any the user may see (visible_to) — ids of anything else, or malformed ones, are silently
    not there: one stale or mangled id does not drop the rest of the selection."""
    action, ids = request.POST.get("action", ""), _uuids(request.POST.getlist("ids")[:BULK_MAX])
    if action not in BULK_ACTIONS:
        messages.error(request, f"action: choose one of {', '.join(BULK_ACTIONS)}.")
        return back(request, "gallery")
    selected = GeneratedImage.objects.visible_to(request.user).filter(pk__in=ids)
    count = selected.count()
    if not count:
        messages.error(request, "Select at least one picture first.")
        return back(request, "gallery")
    if action == "download":
        stream = image_zip(selected.order_by("-created_at", "index"))
        response = StreamingHttpResponse(stream, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="retroportal-{count}-pictures.zip"'
        return response
    mine = selected.filter(owner=request.user)
    if action in ("publish", "unpublish"):
        changed = mine.update(is_public=action == "publish")
        messages.success(request, f"{changed} picture(s) {action}ed.")
    elif action == "delete":
        deleted = 0
        for image in mine:  # one by one, so each file is removed after the commit (generator.signals)
            image.delete()
            deleted += 1
        messages.success(request, f"{deleted} picture(s) deleted.")
    else:
        wanted = request.POST.get("collection", "")
        collection = Collection.objects.filter(pk=int(wanted) if wanted.isdigit() else 0, owner=request.user).first()
        if collection is None:
            messages.error(request, "collection: choose one of your collections (or create one on /collections/).")
            return back(request, "gallery")
        added = collection.add(list(selected))
        messages.success(request, f"{added} picture(s) added to {collection.name}.")
    return back(request, "gallery")
