"""OpenAPI details of the gallery API's request bodies: unknown keys are refused (additionalProperties: false),
as `RejectUnknownFieldsMixin` does, and a collection name must hold a non-blank character."""
from drf_spectacular.extensions import OpenApiSerializerExtension


class _StrictRequest(OpenApiSerializerExtension):
    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False  # one component for requests and answers (no split)
        return schema


class LikeRequestExtension(_StrictRequest):
    target_class = "gallery.api_serializers.LikeRequestSerializer"


class CollectionImageExtension(_StrictRequest):
    target_class = "gallery.api_serializers.CollectionImageSerializer"


class CollectionExtension(_StrictRequest):
    target_class = "gallery.api_serializers.CollectionSerializer"

    def map_serializer(self, auto_schema, direction):
        schema = super().map_serializer(auto_schema, direction)
        if "name" in schema["properties"]:
            schema["properties"]["name"].update(minLength=1, pattern=r"\S")
        return schema
