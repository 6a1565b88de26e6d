"""REST API for integrations: submit generations, follow jobs, list/publish/delete images, list models.

Isolation (same rule as the website): another user's jobs and private images do not exist for you,
every such id answers 404 (a 403 would confirm the id exists). A published image is visible to every
authenticated user; changing or deleting it stays with its owner: others get 403 (the object is
visible, so hiding it behind a 404 would be inconsistent with the 200 they get from GET).

All generation input goes through `services.submit_generation`, the code path of the website, so
both enforce the same limits with the same messages.
"""
from django.db.models import F
from django.http import JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied, Throttled, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from generator import services
from generator.api.pagination import ImagePagination, PageNumberPagination
from generator.api.schema import ApiAutoSchema  # importing it also registers the OpenAPI extensions
from generator.api.serializers import (
    AIModelSerializer,
    ErrorSerializer,
    GenerationCreateSerializer,
    ImageFilterSerializer,
    ImagePatchSerializer,
    ImageSerializer,
    JobFilterSerializer,
    JobSerializer,
    ValidationErrorSerializer,
)
from generator.engine.params import ParamError
from generator.models import AIModel, GeneratedImage, GenerationJob


class QueueUnavailableError(APIException):
    """503 with Retry-After (DRF's exception handler sends the header for any exception with `wait`)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "queue_unavailable"

    def __init__(self, detail: str, wait: int):
        super().__init__(detail)
        self.wait = wait


NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such object, or not yours (private).")
BAD_REQUEST = OpenApiResponse(ValidationErrorSerializer, description="Invalid input; messages per field.")
PAGE_NOT_FOUND = OpenApiResponse(ErrorSerializer, description="The requested page does not exist.")


class ApiViewMixin:
    # JSON in, JSON out (interactive docs at /api/docs/); the schema adds the common 401/403/429 responses.

    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    pagination_class = PageNumberPagination
    schema = ApiAutoSchema()


def _validated_query(serializer_class, request):
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


# --------------------------------------------------------------------------- generations


@extend_schema_view(
    list=extend_schema(
        summary="List your generation jobs",
        description="Your jobs, newest first, 20 per page. `?status=` keeps jobs in one state. Unfinished jobs "
                    "are checked against the queue first, like `GET /api/generations/{id}/`.",
        parameters=[JobFilterSerializer],
        responses={200: JobSerializer(many=True), 400: BAD_REQUEST, 404: PAGE_NOT_FOUND},
    ),
    retrieve=extend_schema(
        summary="Get one job (poll this until status is done, failed or cancelled)",
        description="A job whose worker died or whose queue entry vanished is marked failed here, with the reason "
                    "in `error`. `progress` counts denoising steps over all images of the job.",
        responses={200: JobSerializer, 404: NOT_FOUND},
    ),
)
class GenerationViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = JobSerializer
    queryset = GenerationJob.objects.none()  # per-user queryset in get_queryset; this only names the model

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return self.queryset
        jobs = (
            GenerationJob.objects.filter(user=self.request.user)
            .select_related("model")
            .defer("preview_png")  # served by its own URL (preview_url)
            .prefetch_related("images")  # listed by GenerationJob.images_in_order
            .order_by("-created_at", "-pk")
        )
        if self.action == "list":
            wanted = _validated_query(JobFilterSerializer, self.request).get("status")
            if wanted:
                jobs = jobs.filter(status=wanted)
        return jobs

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        for job in page:
            if not job.is_final:  # a job whose worker died shows as failed here too, not running forever
                services.reconcile(job)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        job = services.reconcile(self.get_object())
        return Response(self.get_serializer(job).data)

    @extend_schema(
        summary="Start a generation",
        description=(
            "Validates the parameters with the website's limits, records the job and queues it. Answers 202 "
            "with the job; poll `GET /api/generations/{id}/` until its status is final. Too many unfinished "
            "jobs (the per-user queue cap), the daily image quota used up, or a full site queue answers 429 "
            "with Retry-After and the reason in `detail`."
        ),
        request=GenerationCreateSerializer,
        responses={
            202: OpenApiResponse(JobSerializer, description="Accepted and queued."),
            400: BAD_REQUEST,
            404: OpenApiResponse(ErrorSerializer, description="`init_image_id` names no image you may remix "
                                                              "(none, or another user's private image)."),
            429: OpenApiResponse(ErrorSerializer, description="Rate limit, per-user queue cap, daily image "
                                                              "quota or site-wide queue bound reached; retry "
                                                              "after Retry-After seconds."),
            503: OpenApiResponse(ErrorSerializer, description="The job queue (Redis) is unreachable; nothing was "
                                                              "submitted; retry after Retry-After seconds."),
        },
        examples=[
            OpenApiExample(
                "Minimal", request_only=True, value={"prompt": "retro anime style, a girl with a red hat"},
            ),
            OpenApiExample(
                "Remix one of your images (image to image)", request_only=True,
                value={"prompt": "retro anime style, the same girl in a blue coat", "init_image_id":
                       "3fa85f64-5717-4562-b3fc-2c963f66afa6", "strength": 0.6, "steps": 20},
            ),
            OpenApiExample(
                "Inpaint with base64 pictures", request_only=True,
                value={"prompt": "retro anime style, a red hat", "init_image": "data:image/png;base64,iVBORw0KGgo...",
                       "mask_image": "iVBORw0KGgo...", "mask_blur": 4, "strength": 1.0},
            ),
            OpenApiExample(
                "Hires fix, LoRAs and a variation", request_only=True,
                value={"prompt": "retro anime style, (red scarf:1.3), a boy", "width": 64, "height": 64,
                       "hires_scale": 2, "hires_strength": 0.5, "loras": [{"name": "retro-style", "scale": 0.8}],
                       "seed": 1234, "variation_seed": 99, "variation_strength": 0.2},
            ),
            OpenApiExample(
                "Everything", request_only=True,
                value={"prompt": "retro anime style, a man with glasses, 1980s cel shading",
                       "negative_prompt": "blurry, lowres", "seed": 1234, "steps": 25, "guidance_scale": 7.5,
                       "width": 512, "height": 768, "num_images": 2, "scheduler": "euler_a", "model": "anything-v3"},
            ),
        ],
    )
    def create(self, request, *args, **kwargs):
        data = GenerationCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        params, model_name, source = data.to_params()
        try:
            job = services.submit_generation(request.user, params, model_name, init_image_source=source)
        except ParamError as exc:
            raise ValidationError(exc.errors) from None
        except services.QueueUnavailable as exc:
            raise QueueUnavailableError(exc.message, wait=exc.retry_after) from None
        except services.SubmissionRefused as exc:
            if exc.retry_after is not None:
                # Per-user queue cap: 429 + Retry-After like the rate limit, with the service's message.
                raise Throttled(wait=exc.retry_after, detail=exc.message) from None
            raise ValidationError({exc.field or "non_field_errors": [exc.message]}) from None
        job = self.get_queryset().get(pk=job.pk)
        body = self.get_serializer(job).data
        location = request.build_absolute_uri(reverse("api:generation-detail", args=[job.pk]))
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})

    @extend_schema(
        summary="Cancel a job",
        description=(
            "A queued job is cancelled at once (status `cancelled`). A running job is asked to stop between two "
            "denoising steps: the answer shows `cancel_requested: true` and the status becomes `cancelled` "
            "shortly after. A job that already finished (done/failed) answers 409; cancelling a cancelled "
            "job again is harmless (200)."
        ),
        request=None,
        responses={
            200: JobSerializer,
            404: NOT_FOUND,
            409: OpenApiResponse(ErrorSerializer, description="The job already finished (done or failed)."),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = services.reconcile(self.get_object())
        if job.status in (GenerationJob.Status.DONE, GenerationJob.Status.FAILED):
            return Response({"detail": f"The job is already {job.status}; there is nothing to cancel."},
                            status=status.HTTP_409_CONFLICT)
        services.cancel(job)
        return Response(self.get_serializer(self.get_queryset().get(pk=job.pk)).data)


# --------------------------------------------------------------------------- images


IMAGE_SORTS = {
    "new": ("-created_at",),
    "clip": (F("clip_score").desc(nulls_last=True), "-created_at"),
    "likes": ("-like_count", "-created_at"),
}


def _image_ordering(query) -> tuple:
    """ORDER BY of GET /api/images/: `sort` (the website's new|clip|likes) wins over `ordering`."""
    if query.get("sort"):
        return (*IMAGE_SORTS[query["sort"]], "index", "pk")
    ordering = query["ordering"]
    if ordering.endswith("clip_score"):
        score = F("clip_score")
        primary = score.desc(nulls_last=True) if ordering.startswith("-") else score.asc(nulls_last=True)
        return (primary, "-created_at", "index", "pk")
    return (ordering, "index", "pk")


@extend_schema_view(
    list=extend_schema(
        summary="List images",
        description=(
            "Your images by default; `?public=true` lists everyone's published images instead. Filters combine; "
            "`?search=` matches prompt words (stems too), `?sort=new|clip|likes` orders as on the website. "
            "Each image's `url` is its PNG (with the A1111 `parameters` text chunk); fetch it with the same "
            "Authorization header."
        ),
        parameters=[ImageFilterSerializer],
        responses={200: ImageSerializer(many=True), 400: BAD_REQUEST, 404: PAGE_NOT_FOUND},
    ),
    retrieve=extend_schema(
        summary="Get one image (yours, or anyone's published image)",
        responses={200: ImageSerializer, 404: NOT_FOUND},
    ),
    partial_update=extend_schema(
        summary="Publish or unpublish your image",
        description="Only `is_public` can change; any other key is refused with 400. Owner only: another user "
                    "gets 404 for a private image and 403 for a published one.",
        request=ImagePatchSerializer,
        responses={200: ImageSerializer, 400: BAD_REQUEST, 403: OpenApiResponse(ErrorSerializer, description=(
            "Not your image (it is published, so you may see it, but not change it), or a session request "
            "without CSRF token.")), 404: NOT_FOUND},
    ),
    destroy=extend_schema(
        summary="Delete your image (and its file)",
        description="Owner only: another user gets 404 for a private image and 403 for a published one.",
        responses={204: None, 403: OpenApiResponse(ErrorSerializer, description=(
            "Not your image (published, so visible, but only its owner may delete it), or a session request "
            "without CSRF token.")), 404: NOT_FOUND},
    ),
)
class ImageViewSet(
    ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
    mixins.DestroyModelMixin, viewsets.GenericViewSet,
):
    serializer_class = ImageSerializer
    pagination_class = ImagePagination
    queryset = GeneratedImage.objects.none()
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return self.queryset
        user = self.request.user
        images = GeneratedImage.objects.select_related("job", "job__model")
        if self.action != "list":
            # Detail actions see your images and published ones; owner-only actions check below (403).
            return images.visible_to(user)
        query = _validated_query(ImageFilterSerializer, self.request)
        images = images.visible_to(user)
        images = images.filter(is_public=True) if query["public"] else images.filter(owner=user)
        if query.get("model"):
            images = images.filter(job__model__name=query["model"])
        if query.get("created_after"):
            images = images.filter(created_at__date__gte=query["created_after"])
        if query.get("created_before"):
            images = images.filter(created_at__date__lte=query["created_before"])
        if query.get("min_clip_score") is not None:
            images = images.filter(clip_score__gte=query["min_clip_score"])
        if (query.get("search") or "").strip():
            images = images.search(query["search"])
            if not query.get("sort") and "ordering" not in self.request.query_params:
                return images.order_by("-rank", "-created_at", "index", "pk")
        return images.order_by(*_image_ordering(query))

    def get_object(self):
        image = get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])  # malformed id: 404 too
        if self.request.method not in ("GET", "HEAD", "OPTIONS") and image.owner_id != self.request.user.pk:
            raise PermissionDenied("Only the owner can change or delete this image.")
        return image

    def partial_update(self, request, *args, **kwargs):
        image = self.get_object()
        patch = ImagePatchSerializer(data=request.data)
        patch.is_valid(raise_exception=True)
        if "is_public" in patch.validated_data:
            image.is_public = patch.validated_data["is_public"]
            image.save(update_fields=["is_public"])
        return Response(self.get_serializer(image).data)

    def perform_destroy(self, image):
        image.delete()  # generator.signals removes the file once the delete is committed


# --------------------------------------------------------------------------- models


@extend_schema_view(
    list=extend_schema(
        summary="List the models you can generate with",
        description="Active models; `is_default` marks the one used when a generation names no model. Entries of "
                    "kind `upscaler` are the upscaler models a generation may name as `hires_upscaler` (not as "
                    "`model`).",
        responses={200: AIModelSerializer(many=True), 400: BAD_REQUEST, 404: PAGE_NOT_FOUND},
    ),
    retrieve=extend_schema(summary="Get one active model by name", responses={200: AIModelSerializer, 404: NOT_FOUND}),
)
class AIModelViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = AIModelSerializer
    queryset = AIModel.objects.filter(is_active=True).select_related("parent").order_by("name")
    lookup_field = "name"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"  # model names are slugs; anything else is the JSON 404 below



@csrf_exempt  # answers 404 to any method; nothing to protect
def api_not_found(request, *args, **kwargs):
    """Any other URL under /api/: a JSON 404 like the API's own, not the website's HTML page."""
    return JsonResponse({"detail": "Not found."}, status=404)
