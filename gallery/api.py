"""REST API of the gallery: likes, collections and a creator's pictures (issue 17, item 9).

Every list of pictures starts from `GeneratedImage.objects.visible_to(request.user)`; another user's
private collection, like another user's private picture, does not exist for you (404).
"""
import uuid

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from gallery import api_schema  # noqa: F401  (registers the OpenAPI extensions)
from gallery.api_serializers import (
    CollectionFilterSerializer, CollectionImageSerializer, CollectionSerializer, LikeRequestSerializer, LikeSerializer,
)
from gallery.models import Collection, Like
from generator.api.serializers import ErrorSerializer, ImageSerializer
from generator.api.views import BAD_REQUEST, NOT_FOUND, PAGE_NOT_FOUND, ApiViewMixin, _validated_query
from generator.models import GeneratedImage

CONFLICT = OpenApiResponse(ErrorSerializer, description="You already have a collection with this name.")
FORBIDDEN = OpenApiResponse(ErrorSerializer, description="Not your collection (it is public, so you may read it, "
                                                         "but only its owner may change it), or no CSRF token.")


class NameTaken(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "name_taken"


def _save_unique(serializer, **extra):
    """Save; the unique constraint on (owner, name) decides, so two concurrent twins cannot both pass."""
    try:
        with transaction.atomic():
            return serializer.save(**extra)
    except IntegrityError:
        name = serializer.validated_data.get("name", "")
        raise NameTaken(f"You already have a collection named {name!r}; choose another name.") from None


class KnownQueryMixin:
    """Refuse query parameters the operation does not document (a typo like ?mnie=true must not be ignored)."""

    known_query = {"list": {"page"}}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        allowed = self.known_query.get(getattr(self, "action", None) or request.method.lower(), set())
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            valid = ", ".join(sorted(allowed)) or "none"
            raise ValidationError({name: [f"Unknown query parameter; valid ones here: {valid}."] for name in unknown})


def _cards(images):
    return images.select_related("job", "job__model")


class ImageLikeView(KnownQueryMixin, ApiViewMixin, generics.GenericAPIView):
    serializer_class = LikeSerializer

    @extend_schema(
        summary="Like, unlike or toggle a like on a picture",
        description="`{\"liked\": true}` likes and `{\"liked\": false}` unlikes (both idempotent: one like per "
                    "user and picture, whatever the number of concurrent requests); an empty body toggles.",
        request=LikeRequestSerializer, responses={200: LikeSerializer, 400: BAD_REQUEST, 404: NOT_FOUND},
    )
    def post(self, request, pk):
        image = get_object_or_404(GeneratedImage.objects.visible_to(request.user), pk=pk)
        body = LikeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        wanted = body.validated_data.get("liked")
        liked = Like.toggle(request.user, image) if wanted is None else Like.set(request.user, image, wanted)
        image.refresh_from_db(fields=["like_count"])
        return Response({"image": image.pk, "liked": liked, "like_count": image.like_count})


@extend_schema_view(
    list=extend_schema(summary="List your collections and everyone's public ones",
                       description="`?mine=true` keeps only yours.", parameters=[CollectionFilterSerializer],
                       responses={200: CollectionSerializer(many=True), 400: BAD_REQUEST, 404: PAGE_NOT_FOUND}),
    retrieve=extend_schema(summary="Get one collection", responses={200: CollectionSerializer, 404: NOT_FOUND}),
    create=extend_schema(summary="Create a collection (private unless is_public)",
                         responses={201: CollectionSerializer, 400: BAD_REQUEST, 409: CONFLICT}),
    partial_update=extend_schema(summary="Rename, describe, publish or unpublish your collection",
                                 responses={200: CollectionSerializer, 400: BAD_REQUEST, 403: FORBIDDEN,
                                            404: NOT_FOUND, 409: CONFLICT}),
    destroy=extend_schema(summary="Delete your collection (its pictures stay)",
                          responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND}),
)
class CollectionViewSet(KnownQueryMixin, ApiViewMixin, viewsets.ModelViewSet):
    serializer_class = CollectionSerializer
    known_query = {"list": {"page", "mine"}, "images": {"page"}}
    queryset = Collection.objects.none()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        user = self.request.user
        collections = Collection.objects.visible_to(user).with_counts(user).select_related("owner")
        if self.action == "list" and _validated_query(CollectionFilterSerializer, self.request)["mine"]:
            collections = collections.filter(owner=user)
        return collections.order_by("-updated_at", "-pk")

    def get_object(self):
        collection = get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])
        if self.request.method not in ("GET", "HEAD", "OPTIONS") and collection.owner_id != self.request.user.pk:
            raise PermissionDenied("Only the owner can change this collection.")
        return collection

    def _answer(self, collection, code=status.HTTP_200_OK):
        return Response(self.get_serializer(self.get_queryset().get(pk=collection.pk)).data, status=code)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._answer(_save_unique(serializer, owner=request.user), status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        return self._answer(_save_unique(serializer))

    @extend_schema(summary="The pictures of a collection that you may see",
                   responses={200: ImageSerializer(many=True), 400: BAD_REQUEST, 404: NOT_FOUND})
    @action(detail=True, methods=["get"], url_path="images", url_name="images")
    def images(self, request, pk=None):
        collection = self.get_object()
        page = self.paginate_queryset(_cards(collection.images_for(request.user)))
        return self.get_paginated_response(ImageSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(summary="Add a picture to your collection",
                   description="Adding a picture already there changes nothing (200).",
                   request=CollectionImageSerializer,
                   responses={200: CollectionSerializer, 400: BAD_REQUEST, 403: FORBIDDEN, 404: NOT_FOUND})
    @images.mapping.post
    def add_image(self, request, pk=None):
        collection = self.get_object()
        body = CollectionImageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        image = GeneratedImage.objects.visible_to(request.user).filter(pk=body.validated_data["image"]).first()
        if image is None:
            raise ValidationError({"image": ["No picture with this id that you may see; use the id of one of "
                                             "your pictures or of a published one."]})
        collection.add([image])
        return self._answer(collection)

    @extend_schema(summary="Remove a picture from your collection", description="Removing one not there: 204 too.",
                   parameters=[OpenApiParameter("image_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
                   responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND})
    @action(detail=True, methods=["delete"], url_path=r"images/(?P<image_id>[0-9a-fA-F-]{36})",
            url_name="image")
    def remove_image(self, request, pk=None, image_id=None):
        collection = self.get_object()
        try:
            image_id = uuid.UUID(image_id)
        except ValueError:
            raise NotFound("No such picture id; use the id of a picture in the collection.") from None
        collection.items.filter(image_id=image_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(summary="A creator's pictures that you may see",
               description="Newest first: their published pictures (all of them if it is you, or for staff).",
               responses={200: ImageSerializer(many=True), 400: BAD_REQUEST, 404: NOT_FOUND})
class UserImagesView(KnownQueryMixin, ApiViewMixin, generics.ListAPIView):
    serializer_class = ImageSerializer
    known_query = {"get": {"page"}}
    queryset = GeneratedImage.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        owner = get_object_or_404(get_user_model(), username=self.kwargs["username"], is_active=True)
        images = GeneratedImage.objects.visible_to(self.request.user).filter(owner=owner)
        return _cards(images).order_by("-created_at", "index", "pk")
