"""OpenAPI details shared by every API operation, so the schema documents every response a client can get.

Every operation can answer 401 (no or bad credentials) and 429 (per-user rate limit, with Retry-After);
unsafe methods can also answer 403 (a session request without a CSRF token). These come from DRF
itself, not from the views, so they are added here rather than repeated on each view.
"""
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from generator.api.serializers import ErrorSerializer

RETRY_AFTER = OpenApiParameter(
    "Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[429], required=True,
    description="Seconds to wait before trying again.",
)

UNAUTHENTICATED = OpenApiResponse(
    ErrorSerializer,
    description="No credentials or bad credentials: send `Authorization: Token <key>` "
                "(create one at /account/token/). The WWW-Authenticate header says which scheme.",
)
THROTTLED = OpenApiResponse(
    ErrorSerializer,
    description="Too many requests (per-user rate limit, or too many unfinished jobs); retry after Retry-After seconds.",
)
CSRF_FAILED = OpenApiResponse(
    ErrorSerializer,
    description="Forbidden: a session (cookie) request without a valid CSRF token, or an action reserved to the owner.",
)


class ApiAutoSchema(AutoSchema):
    """AutoSchema that adds the responses DRF itself produces for every operation (401, 403, 429)."""

    def get_override_parameters(self):
        return [*super().get_override_parameters(), RETRY_AFTER]

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        extra = {"401": UNAUTHENTICATED, "429": THROTTLED}
        if self.method not in ("GET", "HEAD", "OPTIONS"):
            extra["403"] = CSRF_FAILED
        for code, response in extra.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return dict(sorted(responses.items()))


class ValidationErrorExtension(OpenApiSerializerExtension):
    """400 bodies: `{"field": ["message", ...], ...}`, or `{"detail": "..."}` when the body cannot be parsed."""

    target_class = "generator.api.serializers.ValidationErrorSerializer"

    def map_serializer(self, auto_schema, direction):
        return {
            "type": "object",
            "description": "Field name -> list of messages, every bad field at once (`non_field_errors` for errors "
                           "about several fields); only `detail` when the request as a whole is unreadable "
                           "(e.g. malformed JSON).",
            "properties": {"detail": {"type": "string"}},
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "example": {"width": ["100 is not a multiple of 8; use e.g. 96"],
                        "steps": ["500 is out of range; use 1 to 100"]},
        }


class GenerationCreateExtension(OpenApiSerializerExtension):
    """The generation request with the site's limits as schema bounds (read from settings per schema build).

    One limit cannot be written in JSON Schema: with a fixed seed, seed + num_images - 1 must stay
    below 2**32. The server enforces it (400 on `seed`).
    """

    target_class = "generator.api.serializers.GenerationCreateSerializer"

    def map_serializer(self, auto_schema, direction):
        from generator.services import configured_limits

        schema = auto_schema._map_basic_serializer(self.target, direction)
        limits = configured_limits()
        props = schema["properties"]
        props["prompt"].update(minLength=1, pattern=r"\S")
        props["seed"].update(minimum=-1, maximum=2**32 - 1)
        props["steps"].update(minimum=1, maximum=limits.max_steps)
        props["guidance_scale"].update(minimum=0, maximum=limits.max_guidance)
        props["width"].update(minimum=limits.min_side, maximum=limits.max_width, multipleOf=8)
        props["height"].update(minimum=limits.min_side, maximum=limits.max_height, multipleOf=8)
        props["num_images"].update(minimum=1, maximum=limits.max_images)
        for name in ("strength", "hires_strength"):
            props[name].update(minimum=0, exclusiveMinimum=True, maximum=1)  # OpenAPI 3.0: 0 < s <= 1
        props["mask_blur"].update(minimum=0, maximum=limits.max_mask_blur)
        props["hires_scale"].update(minimum=1, maximum=limits.max_hires_scale)
        props["hires_steps"].update(minimum=0, maximum=limits.max_steps)
        props["variation_seed"].update(minimum=-1, maximum=2**32 - 1)
        props["variation_strength"].update(minimum=0, maximum=1)
        props["loras"].update(maxItems=limits.max_loras)
        schema["additionalProperties"] = False
        return schema


class LoraChoiceExtension(OpenApiSerializerExtension):
    target_class = "generator.api.creative.LoraChoiceSerializer"

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["properties"]["scale"].update(minimum=-2, maximum=2)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


class ImagePatchExtension(OpenApiSerializerExtension):
    target_class = "generator.api.serializers.ImagePatchSerializer"

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        return schema
