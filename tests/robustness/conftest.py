from tests.web.conftest import alice, alice_client, bob, bob_client, clip_spec, tiny_model  # noqa: F401
