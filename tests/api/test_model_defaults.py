"""A generation request without steps/guidance_scale draws at the chosen model's own (AIModel.default_steps,
default_guidance_scale), which GET /api/models/ lists; what the client sends wins."""
from generator.models import AIModel


def test_steps_and_cfg_default_to_the_models_own_and_what_the_client_sends_wins(alice_api, registered_model):
    AIModel.objects.create(name="turbo", source="/nonexistent/turbo", architecture="sd1", native_size=512,
                           default_steps=4, default_guidance_scale=1.5)
    asked = {"prompt": "retro anime style, a girl", "model": "turbo"}
    parameters = alice_api.post("/api/generations/", asked, format="json").json()["parameters"]
    assert (parameters["steps"], parameters["guidance_scale"]) == (4, 1.5)
    parameters = alice_api.post("/api/generations/", {**asked, "steps": 9, "guidance_scale": 0},
                                format="json").json()["parameters"]
    assert (parameters["steps"], parameters["guidance_scale"]) == (9, 0.0)
    parameters = alice_api.post("/api/generations/", {"prompt": "a"}, format="json").json()["parameters"]
    assert (parameters["steps"], parameters["guidance_scale"]) == (20, 7.0)  # tiny-sd1 sets none: the site's
    listed = {m["name"]: (m["default_steps"], m["default_guidance_scale"])
              for m in alice_api.get("/api/models/").json()["results"]}
    assert listed == {"tiny-sd1": (20, 7.0), "turbo": (4, 1.5)}
