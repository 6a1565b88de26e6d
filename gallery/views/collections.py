"""Collections (boards): mine at /collections/, one at /collections/<id>/ (private by default)."""
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST
from django.views.generic import ListView

from gallery.forms import CollectionForm
from gallery.models import Collection, CollectionItem
from gallery.views.actions import back
from gallery.views.cards import CardListView
from generator.models import GeneratedImage


class CollectionListView(LoginRequiredMixin, ListView):
    template_name = "gallery/collection_list.html"
    context_object_name = "collections"

    def get_queryset(self):
        return Collection.objects.filter(owner=self.request.user).with_counts(self.request.user)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["form"] = kwargs.get("form") or CollectionForm(owner=self.request.user)
        return ctx

    def post(self, request):
        form = CollectionForm(request.POST, owner=request.user)
        if form.is_valid():
            collection = form.save()
            image = request.POST.get("image")
            if image:
                collection.add(GeneratedImage.objects.visible_to(request.user).filter(pk=_image_id(request)))
            messages.success(request, f"Collection {collection.name} created.")
            return back(request, collection) if image else redirect(collection)
        self.object_list = self.get_queryset()
        return self.render_to_response(self.get_context_data(form=form))


class CollectionDetailView(CardListView):
    """The collection's pictures the viewer may see; owner: edit, remove pictures, delete."""

    template_name = "gallery/collection_detail.html"

    def dispatch(self, request, *args, **kwargs):
        found = Collection.objects.visible_to(request.user).select_related("owner").filter(pk=kwargs["pk"]).first()
        if found is None:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            raise Http404("No such collection.")
        self.collection = found
        return super().dispatch(request, *args, **kwargs)

    def base_images(self):
        return self.visible().filter(collection_items__collection=self.collection)

    def get_queryset(self):
        images = super().get_queryset()
        if not self.request.GET.get("sort") and not self.request.GET.get("q"):
            images = images.order_by("-collection_items__added_at", "pk")
        return images

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        is_owner = self.collection.owner_id == self.request.user.pk
        ctx.update(collection=self.collection, is_owner=is_owner,
                   form=CollectionForm(instance=self.collection, owner=self.request.user) if is_owner else None)
        return ctx


def _image_id(request):
    try:
        return uuid.UUID(request.POST.get("image", ""))
    except ValueError:
        raise Http404("No such picture.") from None


def _my_collection(request, pk):
    return get_object_or_404(Collection, pk=pk, owner=request.user)


@login_required
@require_POST
def collection_edit(request, pk):
    collection = _my_collection(request, pk)
    form = CollectionForm(request.POST, instance=collection, owner=request.user)
    if form.is_valid():
        form.save()
        messages.success(request, "Collection saved.")
        return redirect(collection)
    for field, errors in form.errors.items():
        for error in errors:
            messages.error(request, f"{field}: {error}")
    return redirect(collection)


@login_required
@require_POST
def collection_delete(request, pk):
    collection = _my_collection(request, pk)
    collection.delete()  # the pictures stay; only the board goes
    messages.success(request, f"Collection {collection.name} deleted (its pictures are untouched).")
    return redirect("collection-list")


@login_required
@require_POST
def collection_add(request, pk):
    collection = _my_collection(request, pk)
    image = get_object_or_404(GeneratedImage.objects.visible_to(request.user), pk=_image_id(request))
    added = collection.add([image])
    messages.success(request, f"Added to {collection.name}." if added else f"Already in {collection.name}.")
    return back(request, image)


@login_required
@require_POST
def collection_remove(request, pk):
    collection = _my_collection(request, pk)
    CollectionItem.objects.filter(collection=collection, image_id=_image_id(request)).delete()
    messages.success(request, f"Removed from {collection.name}.")
    return back(request, collection)
