"""Property-based tests of the API against its own OpenAPI schema (schemathesis, in-process WSGI).

For every operation in /api/schema/ schemathesis generates requests from the schema, both valid and
deliberately invalid ones, and checks each answer: never a 5xx, only documented status codes,
bodies and headers that match the documented schema, invalid input refused. Every case is sent
twice: as generated (random ids: mostly 404), and with the path id swapped for a real object so the
200 branches are fuzzed too. Generation is deterministic (same cases on every run) and bounded
(MAX_EXAMPLES per operation) to keep the suite fast; submissions never reach Redis (the test's
transaction never commits) and the per-user queue cap turns later ones into documented 429s.
"""
import uuid

import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework.authtoken.models import Token

from generator.models import AIModel, GeneratedImage, GenerationJob
from tests.api.conftest import make_image, make_job, make_user
from tests.pictures import b64, data_url, encode, gradient, mask

MAX_EXAMPLES = 25
PICTURE = b64(encode(gradient(64, 64)))
MASK = data_url(encode(mask(64, 64)))


@pytest.fixture(scope="module")
def wsgi_app():
    return WSGIHandler()


@pytest.fixture
def api_schema(db, wsgi_app):
    # Requests run in this thread on the test's connection, inside its transaction: like Django's test
    # client, stop the request signals from closing that connection between requests.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
        schema.config.generation.update(
            max_examples=MAX_EXAMPLES, deterministic=True,
            # PostgreSQL text cannot hold NUL; the API refuses it with 400 (test_api.py covers that), but
            # the schema does not spell it out as a pattern on every string.
            allow_x00=False,
        )
        yield schema
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


class World:
    """Objects the fuzzed requests can hit: alice (the caller) owns jobs and images; bob published one."""

    def __init__(self):
        self.alice = make_user("alice")
        bob = make_user("bob")
        self.model = AIModel.objects.create(name="tiny-sd1", source="/nonexistent", architecture="sd1", is_default=True)
        self.lora = AIModel.objects.create(name="retro-style", source="/nonexistent.safetensors", kind="lora",
                                           parent=self.model, architecture="sd1")
        self.upscaler = AIModel.objects.create(name="tiny-esrgan", source="/nonexistent-x2.safetensors",
                                               kind="upscaler", architecture="ESRGAN", upscale_factor=2)
        self.token = Token.objects.create(user=self.alice).key
        make_image(make_job(self.alice, self.model))
        make_job(self.alice, self.model, status=GenerationJob.Status.QUEUED)
        self.bobs_public = make_image(make_job(bob, self.model), is_public=True).pk
        from gallery.models import Collection

        self.bobs_collection = Collection.objects.create(owner=bob, name="bob's public", is_public=True).pk

    def respect_server_state(self, case):
        """What a schema cannot know: which model names exist, and one cross-field limit on seed."""
        body = case.body if isinstance(case.body, dict) else None
        if body is not None and case.path == "/api/collections/{id}/images/" and "image" in body:
            body["image"] = str(self.bobs_public)  # a picture alice may see (a random id is a 400)
        if body is not None and case.path.startswith("/api/collections/") and isinstance(body.get("name"), str):
            body["name"] = body["name"].strip() or "favourites"  # a blank name is a 400 the schema cannot say
        if body is None or case.path != "/api/generations/":
            return
        if "model" in body and body["model"]:
            body["model"] = self.model.name
        if body.get("seed", -1) >= 0:
            body["seed"] = min(body["seed"], 2**32 - body.get("num_images", 1))
        if body.get("variation_seed", -1) >= 0:
            body["variation_seed"] = min(body["variation_seed"], 2**32 - body.get("num_images", 1))
        # The creative controls (issue 13): pictures must be pictures, a mask needs one, LoRA names must be
        # registered (upscalers too), translation needs a translation model, and hires must enlarge within the size
        # limit.
        for field, picture in (("init_image", PICTURE), ("mask_image", MASK)):
            if body.get(field):
                body[field] = picture
        if body.get("init_image") and body.get("init_image_id"):
            body["init_image_id"] = None
        if body.get("mask_image") and not (body.get("init_image") or body.get("init_image_id")):
            body["init_image"] = PICTURE
        if body.get("loras"):
            body["loras"] = [{"name": self.lora.name, "scale": body["loras"][0].get("scale", 1.0)}]
        if isinstance(body.get("hires_upscaler"), str):  # a registry name, like `model`
            upscalers = ("Lanczos", "Latent", self.upscaler.name)
            body["hires_upscaler"] = upscalers[len(body["hires_upscaler"]) % len(upscalers)]
        body["translate"] = ""
        self._hires_within_limits(body, self.model.native_size)

    @staticmethod
    def _hires_within_limits(body, native):
        from generator.engine.param_checks import hires_side
        from generator.services import site_limits

        limits, scale = site_limits(), body.get("hires_scale", 1)
        sides = [(body.get("width") or native, limits.max_width), (body.get("height") or native, limits.max_height)]
        if scale > 1 and any(hires_side(side, scale) <= side or hires_side(side, scale) > top for side, top in sides):
            body["hires_scale"] = 1

    def _collection(self, method):
        """Alice's own collection (recreated if fuzzing deleted it), or bob's public one for reads."""
        from gallery.models import Collection

        if method == "GET" and uuid.uuid4().int % 2:
            return Collection.objects.get(pk=self.bobs_collection)
        return Collection.objects.filter(owner=self.alice).first() or Collection.objects.create(
            owner=self.alice, name=f"alice's {uuid.uuid4().hex[:8]}")

    def real_id(self, path: str, method: str) -> str:
        if path.startswith("/api/models/"):
            return self.model.name
        if path.startswith("/api/users/"):
            return "bob" if uuid.uuid4().int % 2 else "alice"
        if path.startswith("/api/collections/"):
            return str(self._collection(method).pk)
        if path.startswith("/api/generations/"):
            job = GenerationJob.objects.filter(user=self.alice).order_by("?").first()
            return str(job.pk)
        # Alternate between alice's own image and bob's published one; recreate alice's if fuzzing deleted it.
        own = GeneratedImage.objects.filter(owner=self.alice).first()
        if own is None:
            own = make_image(make_job(self.alice, self.model))
        return str(own.pk if method in ("PATCH", "DELETE") or uuid.uuid4().int % 2 else self.bobs_public)


@pytest.fixture
def world(db):
    return World()


def _operations():
    """(method, path) of every operation in the schema, listed at collection time (no HTTP needed)."""
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    return [(method.upper(), path) for path, item in paths.items() for method in item]


# schemathesis' own pytest integration (`from_fixture(...).parametrize()`) does not run on pytest 9
# yet, so the cases are drawn with plain Hypothesis from each operation's strategy.
@pytest.mark.parametrize("method,path", _operations(), ids=lambda value: str(value))
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_api_conforms_to_its_schema(api_schema, world, method, path, mode):
    operation = api_schema[path][method]
    headers = {"Authorization": f"Token {world.token}"}
    key = next((name for name in ("id", "name", "username") if "{%s}" % name in path), None)
    statuses = []

    @hypothesis.given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(hypothesis.HealthCheck), phases=[hypothesis.Phase.explicit,
                                                                     hypothesis.Phase.generate],
    )
    def check(case):
        if mode == "positive":
            world.respect_server_state(case)
        statuses.append(case.call_and_validate(headers=headers).status_code)
        if key is not None:
            case.path_parameters[key] = world.real_id(path, method)
            statuses.append(case.call_and_validate(headers=headers).status_code)

    try:
        check()
    except hypothesis.errors.Unsatisfiable:
        # e.g. GET /api/models/{name}/: any string is a well-formed name, so there is no negative case.
        assert mode == "negative"
        pytest.skip(f"no schema-violating request exists for {method} {path}")
    # Guard against a vacuous pass (e.g. every request a documented 401 because auth broke).
    if mode == "positive":
        assert any(200 <= status < 300 for status in statuses), sorted(set(statuses))
