"""2-step runs of every method: the files written and the keys inside them."""
import pytest
import torch
from safetensors import safe_open

from training.dreambooth import train

from .conftest import load_safetensors

CASES = [(method, te, reg) for method in ("full", "lora") for te in (False, True) for reg in (False, True)]


@pytest.mark.parametrize("method,train_te,regularized", CASES,
                         ids=[f"{m}{'-te' if t else ''}{'-prior-l2sp' if r else ''}" for m, t, r in CASES])
def test_two_step_run(make_cfg, class_dir, tiny_sd1, method, train_te, regularized):
    extra = dict(with_prior_preservation=True, class_prompt="a girl", class_data_dir=class_dir,
                 l2sp_weight=1.0) if regularized else {}
    cfg = make_cfg(method=method, train_text_encoder=train_te, **extra)
    result = train(cfg)
    out = result.out
    assert result.step == 2 and not result.cancelled
    for name in ("config.toml", "metrics.csv", "loss.png", "README.md", "validation/step-000002.png"):
        assert (out / name).exists(), name
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0] == "step,loss,diffusion_loss,prior_loss,l2sp,l2,lr,seconds" and len(rows) == 3
    last = dict(zip(rows[0].split(","), rows[-1].split(",")))
    assert (float(last["prior_loss"]) > 0) == regularized
    assert (float(last["l2sp"]) > 0) == regularized
    assert "## Hyperparameters" in (out / "README.md").read_text()
    assert list((out / "logs").rglob("events.out.tfevents.*")), "TensorBoard event file"
    if method == "lora":
        _check_lora_files(out, train_te, cfg)
    else:
        _check_full_pipeline(out, tiny_sd1, train_te)


def _check_lora_files(out, train_te, cfg):
    peft = load_safetensors(out / "pytorch_lora_weights.safetensors")
    assert peft and all(k.startswith(("unet.", "text_encoder.")) for k in peft)
    assert any("lora_A" in k or "lora.down" in k for k in peft)
    assert any(k.startswith("text_encoder.") for k in peft) == train_te
    kohya = load_safetensors(out / "lora_kohya.safetensors")
    assert all(k.startswith(("lora_unet_", "lora_te_")) for k in kohya)
    assert any(k.startswith("lora_te_text_model_encoder_layers_") for k in kohya) == train_te
    downs = [k for k in kohya if k.endswith(".lora_down.weight")]
    assert downs and all(k.replace(".lora_down.weight", ".lora_up.weight") in kohya for k in downs)
    assert all(float(kohya[k.replace(".lora_down.weight", ".alpha")]) == cfg.lora_alpha for k in downs)
    with safe_open(str(out / "lora_kohya.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["ss_network_dim"] == str(cfg.rank) and meta["ss_network_alpha"] == str(cfg.lora_alpha)
    assert meta["ss_base_model_version"] == "sd_v1" and meta["ss_output_name"] == cfg.output_name


def _check_full_pipeline(out, base, train_te):
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    tuned, orig = (UNet2DConditionModel.from_pretrained(p, subfolder="unet") for p in (out, base))
    assert any(not torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), orig.state_dict().values()))
    te_tuned, te_orig = (CLIPTextModel.from_pretrained(p, subfolder="text_encoder") for p in (out, base))
    te_changed = any(not torch.equal(a, b) for a, b in zip(te_tuned.state_dict().values(),
                                                           te_orig.state_dict().values()))
    assert te_changed == train_te


def test_v_prediction_min_snr_noise_offset_ema(tiny_models, make_cfg):
    """SD 2.x-style v-prediction target, min-SNR-γ weights, offset noise, EMA, accumulation, cosine LR."""
    cfg = make_cfg(base_model=tiny_models["sd2"], method="lora", snr_gamma=5.0, noise_offset=0.1, use_ema=True,
                   gradient_accumulation_steps=2, lr_scheduler="cosine", lr_warmup_steps=1, batch_size=2)
    result = train(cfg)
    assert "prediction type v_prediction" in (result.out / "README.md").read_text()
    with safe_open(str(result.out / "lora_kohya.safetensors"), "pt") as f:
        assert f.metadata()["ss_base_model_version"] == "sd_v2"
    lrs = [float(r.split(",")[6]) for r in (result.out / "metrics.csv").read_text().splitlines()[1:]]
    assert lrs[0] < lrs[1]  # warmup


def test_bf16_gradient_checkpointing_text_encoder_stop_and_l2(make_cfg):
    """Mixed precision (bf16 autocast on CPU), checkpointed activations, text encoder frozen after step 1."""
    cfg = make_cfg(method="lora", mixed_precision="bf16", gradient_checkpointing=True, train_text_encoder=True,
                   stop_text_encoder_after=1, l2_weight=0.01, max_steps=3, checkpoint_steps=1,
                   checkpoints_total_limit=3)
    out = train(cfg).out
    assert float(open(out / "metrics.csv").read().splitlines()[-1].split(",")[5]) > 0  # l2 logged
    te = [load_safetensors(out / f"checkpoint-{s}" / "model_1.safetensors") for s in (1, 2, 3)]
    assert all(torch.equal(te[1][k], te[2][k]) for k in te[1])  # steps 2 and 3 leave the text encoder alone


def test_full_run_exports_a_single_file_that_generates_like_the_folder(make_cfg, tiny_sd1):
    from generator.engine.generate import generate
    from generator.engine.loading import load_pipeline
    from generator.engine.params import GenerationParams

    result = train(make_cfg(method="full", export_single_file=True, output_name="retro-full", export_dtype="fp32"))
    single = result.out / "retro-full.safetensors"
    assert single.exists() and "retro-full.safetensors" in result.files
    # readable by an A1111/ComfyUI running as another user; loadable by transformers 4.x (text_model. keys, vocab)
    for path in [single, *(result.out / part for part in ("unet", "vae", "text_encoder", "tokenizer"))]:
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path
        assert all(p.stat().st_mode & 0o777 == 0o644 for p in path.rglob("*")), path
    with safe_open(str(result.out / "text_encoder" / "model.safetensors"), "pt") as f:
        assert all(key.startswith("text_model.") for key in f.keys())
    assert (result.out / "tokenizer" / "vocab.json").is_file() and (result.out / "tokenizer" / "merges.txt").is_file()
    params = GenerationParams(prompt="a girl", seed=3, steps=2, width=64, height=64, scheduler="euler")
    from_folder = generate(load_pipeline(str(result.out), device="cpu"), params).pictures[0].image
    from_file = generate(load_pipeline(str(single), device="cpu", config_dir=str(result.out)), params).pictures[0].image
    assert torch.equal(torch.tensor(list(from_folder.getdata())), torch.tensor(list(from_file.getdata())))


def test_single_file_export_is_refused_for_lora_runs(make_cfg):
    from training.dreambooth import ConfigError

    with pytest.raises(ConfigError, match="export_single_file"):
        make_cfg(method="lora", export_single_file=True)


def test_captioned_class_pictures_train_with_their_own_captions(make_cfg, tmp_path):
    """kohya's reg-folder convention: a class picture's .txt caption replaces the class prompt."""
    from training.dreambooth.loop import preflight, setup

    from .conftest import write_dataset

    reg = write_dataset(tmp_path / "reg", n=2, seed=3)
    (reg / "img1.txt").write_text("", encoding="utf-8")  # an empty caption falls back to the class prompt
    cfg = make_cfg(with_prior_preservation=True, class_prompt="a girl", class_data_dir=str(reg), num_class_images=2)
    run, _ = setup(cfg, *preflight(cfg))
    prompts = sorted(e.prompt for e in run.class_plan.examples)
    assert prompts == ["a girl", "red hair, pose 0"]


def test_an_fp16_base_folder_trains_and_samples_in_fp32(make_cfg, tiny_sd1, tmp_path):
    """The shipped mini-world base is stored in fp16; class pictures and training must not mix dtypes."""
    from diffusers import StableDiffusionPipeline

    half = tmp_path / "half"
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd1, dtype=torch.float16, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.save_pretrained(half)
    cfg = make_cfg(base_model=str(half), with_prior_preservation=True, class_prompt="a girl",
                   class_data_dir=str(tmp_path / "class"), method="full")
    result = train(cfg)
    assert result.step == 2 and len(list((tmp_path / "class").glob("*.png"))) == 2
    assert load_safetensors(result.out / "unet" / "diffusion_pytorch_model.safetensors")["conv_in.weight"].dtype \
        == torch.float32
