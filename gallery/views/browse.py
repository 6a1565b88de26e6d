"""Read-only pages: home, Explore, my gallery (and Liked), profiles, model pages, the image page."""
from django.contrib.auth import get_user_model
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.db.models import Count, Sum
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.views.generic import DetailView

from gallery.lora_files import lora_file, model_card
from gallery.models import Collection, Report
from gallery.views.cards import CardListView, decorate, login_url_back
from generator.models import AIModel, GeneratedImage


class ExploreView(CardListView):
    """Everyone's published pictures, signed in or not; like and collect ask to sign in."""

    template_name = "gallery/explore.html"

    def base_images(self):
        return self.visible().public()


class HomeView(ExploreView):
    """Signed in: the generate page. Signed out: Explore with a call to sign up."""

    template_name = "gallery/home.html"

    def get(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            return redirect("generate")
        return super().get(request, *args, **kwargs)


class GalleryView(LoginRequiredMixin, CardListView):
    """My pictures (tab=mine) or the pictures I liked (tab=liked), with search, filters, tags and bulk actions."""

    template_name = "gallery/gallery.html"

    @property
    def tab(self):
        return "liked" if self.request.GET.get("tab") == "liked" else "mine"

    @property
    def show_owner(self):
        return self.tab == "liked"

    def base_images(self):
        if self.tab == "liked":
            return self.visible().filter(likes__user=self.request.user)
        return self.visible().filter(owner=self.request.user)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["tab"] = self.tab
        ctx["my_collections"] = Collection.objects.filter(owner=self.request.user).order_by("name")
        return ctx


class ProfileView(CardListView):
    """/u/<username>/: a creator's published pictures and public collections, pictures and likes received."""

    template_name = "gallery/profile.html"

    def dispatch(self, request, *args, **kwargs):
        self.creator = get_object_or_404(get_user_model(), username=kwargs["username"], is_active=True)
        return super().dispatch(request, *args, **kwargs)

    def base_images(self):
        return self.visible().public().filter(owner=self.creator)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        totals = (GeneratedImage.objects.visible_to(self.request.user).public().filter(owner=self.creator)
                  .aggregate(pictures=Count("pk"), likes=Sum("like_count")))
        ctx.update(creator=self.creator, pictures_count=totals["pictures"], likes_received=totals["likes"] or 0,
                   collections=Collection.objects.visible_to(self.request.user).filter(owner=self.creator,
                                                                                        is_public=True)
                   .with_counts(self.request.user)[:24])
        return ctx


class ModelPageView(CardListView):
    """/models/<name>/: description, model card, best-liked published pictures, generate / download."""

    template_name = "gallery/model_page.html"
    default_sort = "likes"  # best-liked first

    def dispatch(self, request, *args, **kwargs):
        self.model = get_object_or_404(AIModel.objects.pipelines().select_related("parent"), name=kwargs["name"],
                                       is_active=True)
        return super().dispatch(request, *args, **kwargs)

    def base_images(self):
        return self.visible().public().filter(job__model=self.model)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(model=self.model, card=model_card(self.model.source), download=downloadable_lora(self.model))
        return ctx


def downloadable_lora(model):
    if model.kind != AIModel.Kind.LORA or not model.downloadable:
        return None
    return lora_file(model.source)


def model_download(request, name):
    """The LoRA's .safetensors file, unchanged (kohya format), when an admin marked the model downloadable."""
    model = get_object_or_404(AIModel, name=name, is_active=True)
    found = downloadable_lora(model)
    if found is None:
        raise Http404("This model is not offered for download.")
    response = FileResponse(found.path.open("rb"), as_attachment=True, filename=found.filename,
                            content_type="application/octet-stream")
    response["X-Checksum-SHA256"] = found.sha256
    return response


class ImageDetailView(DetailView):
    """One picture, for whoever may see it (visible_to); a signed-out visitor asking for a hidden one signs in."""

    template_name = "gallery/image_detail.html"
    context_object_name = "image"

    def get(self, request, *args, **kwargs):
        try:
            return super().get(request, *args, **kwargs)
        except Http404:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            raise

    def get_object(self, queryset=None):
        return get_object_or_404(GeneratedImage.objects.visible_to(self.request.user).for_cards(),
                                 pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        user, image = self.request.user, self.object
        decorate([image], user)
        ctx["is_owner"] = user.is_authenticated and image.owner_id == user.pk
        if user.is_authenticated:
            mine = Collection.objects.filter(owner=user).order_by("name")
            ctx["my_collections"] = mine
            ctx["in_collections"] = set(mine.filter(items__image=image).values_list("pk", flat=True))
            ctx["reported"] = Report.objects.filter(image=image, reporter=user).exists()
        ctx["report_reasons"] = Report.Reason.choices
        ctx["public_collections"] = (Collection.objects.visible_to(user).filter(items__image=image, is_public=True)
                                     .select_related("owner")[:12])
        ctx["tags_text"] = ", ".join(image.tag_names)
        ctx["login_next"] = login_url_back(self.request)
        return ctx
