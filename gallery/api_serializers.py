"""Serializers of the gallery API (likes, collections): they validate bodies and shape answers."""
from rest_framework import serializers

from generator.api.fields import (
    NoBlankQueryMixin, QueryBooleanField, RejectUnknownFieldsMixin, StrictBooleanField, StrictCharField,
)
from gallery.models import Collection


class LikeRequestSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    liked = StrictBooleanField(required=False, help_text="true: like, false: unlike (both idempotent); "
                                                         "omitted: toggle.")


class LikeSerializer(serializers.Serializer):
    image = serializers.UUIDField(help_text="The picture's id.")
    liked = serializers.BooleanField(help_text="Whether you like it now.")
    like_count = serializers.IntegerField(help_text="Likes it has now, yours included.")


class CollectionSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    name = StrictCharField(max_length=100, help_text="Unique among your collections.")
    description = StrictCharField(max_length=2000, required=False, allow_blank=True)
    is_public = StrictBooleanField(required=False, help_text="Listed on your profile and readable by everyone.")
    owner = serializers.CharField(source="owner.username", read_only=True)
    image_count = serializers.SerializerMethodField(help_text="Pictures in it that you may see.")

    class Meta:
        model = Collection
        fields = ["id", "name", "description", "is_public", "owner", "image_count", "created_at", "updated_at"]
        read_only_fields = ["id", "owner", "image_count", "created_at", "updated_at"]

    def to_internal_value(self, data):
        if isinstance(data, dict):  # the schema has one component for both ways: answer-only keys are refused
            fixed = sorted(str(key) for key in data if key in self.Meta.read_only_fields)
            if fixed:
                raise serializers.ValidationError({key: ["Read-only; leave it out (only name, description and "
                                                         "is_public can be set)."] for key in fixed})
        return super().to_internal_value(data)

    def get_image_count(self, collection) -> int:
        return getattr(collection, "visible_count", 0)

    def validate_name(self, value):
        value = value.strip()
        if not value:
            raise serializers.ValidationError("A name is required; give the collection a few words, e.g. 'Favourites'.")
        return value


class CollectionImageSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    image = serializers.UUIDField(help_text="Id of a picture you may see (yours, or a published one).")


class CollectionFilterSerializer(NoBlankQueryMixin, serializers.Serializer):
    """Query parameters of GET /api/collections/."""

    mine = QueryBooleanField(required=False, default=False,
                             help_text="true: only your collections; false (default): yours and everyone's public ones.")
