"""LoRAs produced by training load in the generation engine, UNet-only and with the text encoder (with
peft 0.21 + transformers 5 the text-encoder part is applied too: lora.py writes the CLIP keys the loader
expects); a LoRA that does not fit its base model fails the job with one readable line, not a traceback."""
import pytest
import torch

from generator.engine.loading import ModelLoadError, load_pipeline
from training.dreambooth import load_config, train
from tests.training.conftest import write_dataset


@pytest.fixture(scope="module")
def trained_loras(tmp_path_factory, tiny_sd1_path):
    root = tmp_path_factory.mktemp("loras")
    data = write_dataset(root / "data")
    out = {}
    for te in (False, True):
        cfg = load_config(None, dict(base_model=str(tiny_sd1_path), dataset=str(data), out=str(root / f"te{int(te)}"),
                                     instance_prompt="sks girl", resolution=32, bucket_step=16, max_steps=2,
                                     checkpoint_steps=0, validation_inference_steps=2, rank=4, learning_rate=1e-2,
                                     train_text_encoder=te))
        train(cfg)
        out[te] = root / f"te{int(te)}" / "pytorch_lora_weights.safetensors"
    return out


def max_change(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("with_text_encoder", [False, True])
def test_trained_lora_loads_and_changes_the_weights(trained_loras, tiny_sd1_path, with_text_encoder):
    base = load_pipeline(str(tiny_sd1_path), device="cpu", dtype=torch.float32)
    tuned = load_pipeline(str(tiny_sd1_path), device="cpu", dtype=torch.float32,
                          lora=str(trained_loras[with_text_encoder]))
    assert tuned.lora_hash
    assert max_change(base.pipeline.unet, tuned.pipeline.unet) > 0
    te_change = max_change(base.pipeline.text_encoder, tuned.pipeline.text_encoder)
    assert (te_change > 0) == with_text_encoder


@pytest.fixture
def mismatched_lora(trained_loras, tmp_path):
    """The trained LoRA with one tensor of the wrong shape (as a LoRA made for another model would have)."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(trained_loras[True]))
    key = next(k for k in sorted(state) if k.startswith("unet") and k.endswith("up.weight"))
    state[key] = torch.zeros(state[key].shape[0] + 3, state[key].shape[1])
    path = tmp_path / "mismatched.safetensors"
    save_file(state, str(path))
    return path


@pytest.mark.django_db
def test_a_lora_that_does_not_fit_fails_the_job_in_one_line(mismatched_lora, tiny_sd1_path, settings,
                                                            django_user_model):
    from generator.models import AIModel, GenerationJob
    from generator.tasks import run_generation_job

    settings.RETROPORTAL_RUN_JOBS_INLINE = True
    with pytest.raises(ModelLoadError) as caught:
        load_pipeline(str(tiny_sd1_path), device="cpu", lora=str(mismatched_lora))
    assert "\n" not in str(caught.value) and "cannot apply LoRA" in str(caught.value)

    base = AIModel.objects.create(name="tiny-sd1", source=str(tiny_sd1_path), architecture="sd1")
    lora = AIModel.objects.create(name="wrong-lora", source=str(mismatched_lora), kind="lora", parent=base)
    user = django_user_model.objects.create_user("u", password="pw-u-12345678")
    job = GenerationJob.objects.create(user=user, model=lora, prompt="sks girl", seed=1, steps=2, guidance_scale=5,
                                       width=64, height=64, num_images=1, scheduler="euler")
    assert run_generation_job(str(job.pk)) == "failed"
    job.refresh_from_db()
    assert job.error.startswith("cannot apply LoRA") and "\n" not in job.error and "Traceback" not in job.error
