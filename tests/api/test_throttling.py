"""Per-user rate limit: over the configured rate the API answers 429 with Retry-After."""
import pytest
from django.conf import settings
from django.test import override_settings

from tests.api.conftest import make_user, token_client

pytestmark = pytest.mark.django_db


def rest_framework_with_rate(rate):
    return {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": rate}}


def test_exceeding_the_rate_is_429_with_retry_after(alice_api, bob_api):
    with override_settings(REST_FRAMEWORK=rest_framework_with_rate("3/min")):
        for _ in range(3):
            assert alice_api.get("/api/models/").status_code == 200
        response = alice_api.get("/api/generations/")  # the limit is per user, across endpoints
        assert response.status_code == 429
        assert 1 <= int(response["Retry-After"]) <= 60
        assert response.json()["detail"].startswith("Request was throttled")
        # Another user has their own allowance.
        assert bob_api.get("/api/models/").status_code == 200


def test_rate_is_read_at_request_time():
    user = make_user("carol")
    client = token_client(user)
    with override_settings(REST_FRAMEWORK=rest_framework_with_rate("1/hour")):
        assert client.get("/api/models/").status_code == 200
        response = client.get("/api/models/")
        assert response.status_code == 429 and int(response["Retry-After"]) > 60
    with override_settings(REST_FRAMEWORK=rest_framework_with_rate(None)):  # no rate: not throttled
        for _ in range(5):
            assert client.get("/api/models/").status_code == 200
