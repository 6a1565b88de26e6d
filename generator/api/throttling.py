"""Per-user API rate limit, read from settings at request time.

DRF's `SimpleRateThrottle.THROTTLE_RATES` is bound when DRF is imported, so changing
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] later (override_settings in tests, or settings reloaded)
would be ignored. This subclass looks the rate up on every request from DRF's live `api_settings`
(which DRF reloads when the REST_FRAMEWORK setting changes). Production sets the rate with
RETROPORTAL_API_RATE (e.g. "120/min"); an empty/None rate switches throttling off.

Counts live in Django's default cache: with the default LocMemCache each web process counts on
its own, so with N gunicorn workers the effective limit is up to N times the rate. Point CACHES at
Redis (django.core.cache.backends.redis.RedisCache) for one shared count.
"""
from rest_framework import throttling
from rest_framework.settings import api_settings


class UserRateThrottle(throttling.UserRateThrottle):
    """Requests per user (per client IP for anonymous requests), answered with 429 and Retry-After."""

    scope = "user"

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope) or None
