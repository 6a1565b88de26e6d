"""Strict JSON field types and request mixins of the integration API (DRF would quietly coerce "20", 20.0
and true into numbers; these refuse them), shared by generator.api.serializers and generator.api.creative."""
import math

from rest_framework import serializers


class FiniteFloatField(serializers.FloatField):
    """A real number (no NaN or infinity, which compare false with every limit).

    In a JSON body only JSON numbers are accepted (not "7.5" or true); `accept_strings=True` is for
    query parameters, which are always text.
    """

    default_error_messages = {"invalid": "A number is required.", "not_finite": "Must be a finite number."}

    def __init__(self, *, accept_strings=False, **kwargs):
        self.accept_strings = accept_strings
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        allowed = (int, float, str) if self.accept_strings else (int, float)
        if isinstance(data, bool) or not isinstance(data, allowed):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("not_finite")
        return value


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: not a string, float or boolean (DRF would quietly turn "20", 20.0 and true into ints)."""

    default_error_messages = {"invalid": "A whole number is required."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A JSON string: not a number (DRF would quietly turn 123 into "123")."""

    default_error_messages = {"invalid": "A string is required."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON true/false: not 0/1 or "yes" (DRF's BooleanField accepts those)."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class QueryBooleanField(serializers.BooleanField):
    """A query-string boolean: exactly `true` or `false` (as OpenAPI clients write them)."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if isinstance(data, bool):  # DRF's stand-in for an absent parameter
            return data
        if data in ("true", "false"):
            return data == "true"
        self.fail("invalid")


class RejectUnknownFieldsMixin:
    """Refuse keys the serializer does not know (a typo like "negative-prompt" must not be silently dropped)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(str(key) for key in data if key not in self.fields)
            if unknown:
                valid = ", ".join(self.fields)
                raise serializers.ValidationError({key: [f"Unknown field; valid fields: {valid}."] for key in unknown})
        return super().to_internal_value(data)


class NoBlankQueryMixin:
    """Query parameters given with an empty value (?ordering=) are refused, not read as absent."""

    def to_internal_value(self, data):
        blank = [name for name in self.fields if name in data and data.get(name) == ""]
        if blank:
            raise serializers.ValidationError({name: ["May not be empty; leave the parameter out instead."]
                                               for name in blank})
        return super().to_internal_value(data)
