"""Pretraining the base mini model: a micro run writes a loadable pipeline and resumes exactly; the shipped
base model (training/miniworld/weights/base) loads through the engine and draws a 64 px picture."""
import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command

from training.miniworld import caption, sample_attributes
from training.miniworld.pretrain import Hooks, PretrainConfig, pretrain
from training.miniworld.pretrain_data import augment_caption, held_out
from training.miniworld.pretrain_export import export_pipeline, folder_size

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO / "training" / "miniworld" / "weights"
BASE = WEIGHTS / "base"

MICRO = PretrainConfig(pool_modern=24, pool_retro=8, vae_channels=(8, 16, 16), unet_channels=(32, 32, 32),
                       text_hidden=32, text_layers=1, unet_heads=4, vae_batch=4, unet_batch=4, encode_batch=8,
                       vae_steps=3, unet_steps=4, warmup=2, log_every=1)


def _weights(run) -> dict:
    out = {f"vae.{k}": v for k, v in run.vae.state_dict().items()}
    for name, module in run.trainables().items():
        out.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
        out.update({f"ema.{name}.{k}": v for k, v in run.ema[name].items()})
    return out


def _stop_at(phase, step):
    return Hooks(should_stop=lambda p, s: (p, s) == (phase, step))


def test_micro_pretraining_resumes_to_the_same_weights_and_exports_a_loadable_pipeline(tmp_path):
    from generator.engine.generate import generate
    from generator.engine.loading import load_pipeline
    from generator.engine.params import GenerationParams

    straight = pretrain(tmp_path / "a", MICRO)
    assert straight.phase == "done" and len(straight.history["unet"]) == MICRO.unet_steps

    stopped = pretrain(tmp_path / "b", MICRO, _stop_at("vae", 2))
    assert (stopped.phase, stopped.step) == ("vae", 2)
    stopped = pretrain(tmp_path / "b", MICRO, _stop_at("unet", 2))  # resumes mid-VAE, stops mid-UNet
    assert (stopped.phase, stopped.step) == ("unet", 2)
    resumed = pretrain(tmp_path / "b", MICRO)
    assert resumed.phase == "done"
    # Same data, noise and state, so the same weights — up to float rounding: CPU kernels' summation order
    # depends on buffer alignment (gradients differ by ~1e-7 between two processes), and Adam turns that into
    # at most ~lr per step on parameters whose gradient is ~0. A resume that lost any state (optimiser, step,
    # data order, EMA) would be off by far more than that, and its losses would differ.
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=2e-3), key
    for phase in ("vae", "unet"):
        assert np.allclose(straight.history[phase], resumed.history[phase], rtol=1e-3), phase
    other = pretrain(tmp_path / "c", dataclasses.replace(MICRO, seed=1))  # what "not the same run" looks like
    assert max((a[k] - b[k]).abs().max() for k in a) < 0.2 * max((a[k] - _weights(other)[k]).abs().max() for k in a)

    with pytest.raises(FileExistsError):
        pretrain(tmp_path / "a", MICRO, resume=False)

    folder = export_pipeline(resumed.pipeline(), tmp_path / "pipe")
    assert (folder / "model_index.json").exists()
    assert not list(folder.rglob("*.bin")) and list((folder / "unet").glob("*.safetensors"))
    model = load_pipeline(str(folder), device="cpu", dtype=torch.float32)
    assert model.architecture == "sd1" and model.native_size == 64
    assert model.pipeline.unet.dtype == torch.float32  # fp16 on disk, upcast on load
    result = generate(model, GenerationParams(prompt=caption(sample_attributes(np.random.default_rng(1))),
                                              steps=2, width=64, height=64, seed=3, guidance_scale=5.0))
    assert result.pictures[0].image.size == (64, 64)


def test_frozen_miniclip_text_encoder_more_latent_channels_and_bilingual_captions(tmp_path):
    """v2 base recipe in miniature: mini-CLIP's text tower is the text encoder and stays frozen (neither the
    optimiser nor the EMA holds it), the VAE has 8 latent channels, the exported folder loads and draws."""
    from generator.engine.generate import generate
    from generator.engine.loading import load_pipeline
    from generator.engine.params import GenerationParams
    from training.miniworld import shipped
    from training.miniworld.text_encoder import text_encoder_from_dir

    cfg = dataclasses.replace(MICRO, text_encoder_from=str(shipped.MINICLIP), latent_channels=8, indonesian=0.5,
                              paraphrase=0.5, vae_feature_from=str(shipped.MINICLIP))
    run = pretrain(tmp_path / "run", cfg)
    assert run.history["vae"] and all(loss > 0 for _, loss in run.history["vae"])
    assert run.phase == "done" and set(run.trainables()) == {"unet"} and set(run.ema) == {"unet"}
    reference = text_encoder_from_dir(shipped.MINICLIP).state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in run.text_encoder.state_dict().items())
    assert run.unet.config.in_channels == 8 and run.unet.config.cross_attention_dim == 64
    assert run.vae.config.latent_channels == 8 and run.tokenizer.pad_token == "!"

    folder = export_pipeline(run.pipeline(), tmp_path / "pipe")
    model = load_pipeline(str(folder), device="cpu", dtype=torch.float32)
    assert model.pipeline.tokenizer.pad_token == "!"
    result = generate(model, GenerationParams(prompt="seorang kakek berambut pendek hitam, di pantai", steps=2,
                                              width=64, height=64, seed=3, guidance_scale=5.0))
    assert result.pictures[0].image.size == (64, 64)


def test_text_encoder_lr_fine_tunes_the_pretrained_encoder_at_its_own_rate(tmp_path):
    """--text-encoder-lr: the pretrained tower joins the optimiser (at its rate, not the UNet's) and the EMA, and
    its weights move; the exported folder carries the moved encoder."""
    from training.miniworld import shipped
    from training.miniworld.text_encoder import text_encoder_from_dir

    cfg = dataclasses.replace(MICRO, text_encoder_from=str(shipped.MINICLIP), text_encoder_lr=1e-3, vae_steps=1)
    run = pretrain(tmp_path / "run", cfg)
    assert set(run.trainables()) == {"unet", "text_encoder"} and set(run.ema) == {"unet", "text_encoder"}
    assert [group["lr"] for group in run.opt.param_groups] == [cfg.unet_lr, 1e-3]  # after warmup
    reference = text_encoder_from_dir(shipped.MINICLIP).state_dict()
    moved = [k for k, v in run.text_encoder.state_dict().items() if not torch.equal(v, reference[k])]
    assert "encoder.layers.0.self_attn.q_proj.weight" in moved
    exported = run.pipeline(ema=False).text_encoder.state_dict()
    assert all(torch.equal(exported[k], v) for k, v in run.text_encoder.state_dict().items())


def test_bilingual_captions_mix_languages_and_phrasings():
    cfg = dataclasses.replace(PretrainConfig(), indonesian=0.3, paraphrase=0.5)
    rng, rnd = np.random.default_rng(0), random.Random(0)
    texts = [augment_caption(sample_attributes(rng), rnd, cfg) for _ in range(400)]
    indonesian = np.mean([" di " in f" {t} " or t.startswith("di ") for t in texts if t])
    assert 0.2 < indonesian < 0.4
    assert not any("retro" in t for t in texts)


def test_style_words_open_a_share_of_captions_in_their_language_and_leave_the_rest_unchanged():
    from training.miniworld.phrasing import style_phrases

    base = dataclasses.replace(PretrainConfig(), indonesian=0.3, paraphrase=0.5)
    rng = np.random.default_rng(0)
    attrs = [sample_attributes(rng) for _ in range(600)]
    plain = [augment_caption(a, random.Random(i), base) for i, a in enumerate(attrs)]
    styled = [augment_caption(a, random.Random(i), dataclasses.replace(base, style_words=0.3))
              for i, a in enumerate(attrs)]
    opened = [(s, p) for s, p in zip(styled, plain) if s != p]
    assert 0.2 < len(opened) / len(attrs) < 0.35  # caption dropout (10%) keeps some empty
    english, indonesian = style_phrases("en"), style_phrases("id")
    for text, before in opened:
        phrase, rest = text.split(", ", 1)
        assert rest == before  # the same caption behind the phrase
        assert phrase in (indonesian if " di " in f" {rest} " or rest.startswith("di ") else english)
    assert any("retro" in t for t, _ in opened) and any("modern" in t for t, _ in opened)


def test_captions_are_augmented_modern_captions_and_held_out_combinations_never_train():
    cfg = PretrainConfig()
    rng, rnd = np.random.default_rng(0), random.Random(0)
    attrs = [sample_attributes(rng) for _ in range(400)]
    texts = [augment_caption(a, rnd, cfg) for a in attrs]
    assert 0.05 < texts.count("") / len(texts) < 0.17  # caption dropout for classifier-free guidance
    assert not any("retro" in t for t in texts)
    full = [t for t, a in zip(texts, attrs) if t == caption(a, "modern")]
    assert 0 < len(full) < len(texts) / 2  # most captions are shuffled, shortened or prefixed
    share = np.mean([held_out(a) for a in attrs])
    assert 0.04 < share < 0.17
    from training.miniworld.pretrain_data import build_pool

    pool = build_pool(dataclasses.replace(cfg, pool_modern=30, pool_retro=5))
    assert pool["modern"].shape == (30, 3, 64, 64) and pool["retro"].shape == (5, 3, 64, 64)
    assert not any(held_out(type(attrs[0])(**names)) for names in pool["attrs"])


def test_command_writes_pipeline_with_model_card_and_refuses_to_overwrite_a_run(tmp_path):
    out = tmp_path / "run"
    args = ["--out", str(out), "--tiny", "--vae-steps", "2", "--unet-steps", "2", "--pool-modern", "16",
            "--pool-retro", "4"]
    call_command("miniworld_pretrain", *args)
    pipe = out / "pipeline"
    for name in ("model_index.json", "README.md", "loss.png", "samples.png", "reconstructions.png"):
        assert (pipe / name).exists(), name
    card = (pipe / "README.md").read_text()
    assert "UNet 2 x 4" in card and "cores" in card and "Reproduce" in card
    with pytest.raises(CommandError, match="--resume"):
        call_command("miniworld_pretrain", *args)
    call_command("miniworld_pretrain", *args[:-6], "--unet-steps", "3", "--resume", "--pool-modern", "16")
    assert "UNet 3 x 4" in (pipe / "README.md").read_text()
    call_command("miniworld_pretrain", "--out", str(out), "--export-only", "--export-to", str(tmp_path / "exp"),
                 "--weights", "raw")
    assert (tmp_path / "exp" / "model_index.json").exists() and "UNet 3 x 4" in (tmp_path / "exp" / "README.md").read_text()


def _safetensors(folder: Path, part: str) -> dict:
    from safetensors.torch import load_file

    return load_file(next((folder / part).glob("*.safetensors")))


def test_command_continues_from_an_exported_pipeline_keeping_its_vae(tmp_path):
    first = tmp_path / "first"
    call_command("miniworld_pretrain", "--out", str(first), "--tiny", "--vae-steps", "2", "--unet-steps", "2",
                 "--pool-modern", "16", "--pool-retro", "4")
    with pytest.raises(CommandError, match=r"not an exported pipeline folder \(missing model_index.json"):
        call_command("miniworld_pretrain", "--out", str(tmp_path / "bad"), "--init-from", str(tmp_path),
                     "--unet-steps", "2", "--pool-modern", "16", "--pool-retro", "4")
    call_command("miniworld_pretrain", "--out", str(tmp_path / "more"), "--init-from", str(first / "pipeline"),
                 "--unet-steps", "2", "--pool-modern", "16", "--pool-retro", "4", "--weights", "raw")
    before, after = first / "pipeline", tmp_path / "more" / "pipeline"
    vae0, vae1 = _safetensors(before, "vae"), _safetensors(after, "vae")
    assert all(torch.equal(vae0[k], vae1[k]) for k in vae0)  # kept: the vae phase is skipped
    unet0, unet1 = _safetensors(before, "unet"), _safetensors(after, "unet")
    changed = [k for k in unet0 if not torch.equal(unet0[k], unet1[k])]
    assert changed and unet0.keys() == unet1.keys()  # the tiny architecture came from the folder, then trained
    assert json.loads((after / "vae" / "config.json").read_text())["scaling_factor"] == \
        json.loads((before / "vae" / "config.json").read_text())["scaling_factor"]
    card = (after / "README.md").read_text()
    assert f"initialised from `{before}`" in card and f"VAE none (kept from `{before}`), UNet 2 x" in card
    assert "--vae-steps" not in card  # the continued run trained no VAE, so its reproduce line names none


def test_grow_attention_adds_identity_attention_blocks_that_then_train():
    from training.miniworld.pretrain_models import attention_from, build_unet, grow_attention

    torch.manual_seed(0)
    unet = build_unet(MICRO).eval()
    grown = grow_attention(unet, 0).eval()
    assert (attention_from(unet), attention_from(grown)) == (1, 0)
    assert grown.config.down_block_types[0] == "CrossAttnDownBlock2D"
    assert grown.config.up_block_types[-1] == "CrossAttnUpBlock2D"
    old, new = unet.state_dict(), grown.state_dict()
    assert all(torch.equal(old[k], new[k]) for k in old)  # every weight carried over
    added = [k for k in new if k not in old]
    assert added and all(k.startswith(("down_blocks.0.attentions.", "up_blocks.2.attentions.")) for k in added)
    x, t, h = torch.randn(2, 4, 16, 16), torch.tensor([10, 900]), torch.randn(2, 77, MICRO.text_hidden)
    with torch.no_grad():
        assert torch.allclose(unet(x, t, h).sample, grown(x, t, h).sample, atol=1e-6)  # the same function
    grown.train()
    grown(x, t, h).sample.pow(2).mean().backward()
    proj = grown.down_blocks[0].attentions[0].proj_out.weight
    assert proj.grad is not None and proj.grad.abs().sum() > 0  # the zeroed projection learns first
    assert grow_attention(grown, 1) is grown and grow_attention(grown, 0) is grown  # never removed


def test_command_grows_attention_of_a_continued_unet(tmp_path):
    first = tmp_path / "first"
    call_command("miniworld_pretrain", "--out", str(first), "--tiny", "--vae-steps", "2", "--unet-steps", "2",
                 "--pool-modern", "16", "--pool-retro", "4")
    call_command("miniworld_pretrain", "--out", str(tmp_path / "grown"), "--init-from", str(first / "pipeline"),
                 "--unet-attention-from", "0", "--unet-steps", "2", "--pool-modern", "16", "--pool-retro", "4")
    after = tmp_path / "grown" / "pipeline"
    config = json.loads((after / "unet" / "config.json").read_text())
    assert config["down_block_types"][0] == "CrossAttnDownBlock2D"
    assert "--unet-attention-from 0" in (after / "README.md").read_text()
    call_command("miniworld_pretrain", "--out", str(tmp_path / "grown"), "--resume", "--init-from",
                 str(first / "pipeline"), "--unet-attention-from", "0", "--unet-steps", "3", "--pool-modern", "16",
                 "--pool-retro", "4")  # the checkpoint of the grown UNet loads into the rebuilt one


def test_pretrain_modules_never_import_django():
    code = ("import sys, training.miniworld.pretrain, training.miniworld.pretrain_eval, "
            "training.miniworld.pretrain_card; bad = [m for m in sys.modules if m == 'django' or "
            "m.startswith('django.')]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, env={"PYTHONPATH": str(REPO), "PATH": ""})


def test_shipped_weights_stay_small():
    from training.miniworld import shipped

    parts = {"base": folder_size(shipped.BASE), "retro LoRA": folder_size(shipped.RETRO_LORA_DIR),
             "mini-CLIP": folder_size(shipped.MINICLIP), "classifier": shipped.CLASSIFIER.stat().st_size}
    total = shipped.total_size()
    print(f"shipped mini-world weights: {total / 1e6:.1f} MB in all ("
          + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in parts.items()) + ")")
    assert all(parts.values()) and total >= sum(parts.values())
    assert total <= 40e6


def test_shipped_base_model_loads_and_draws_a_64px_picture():
    from generator.engine.generate import generate
    from generator.engine.loading import load_pipeline
    from generator.engine.params import GenerationParams

    model = load_pipeline(str(BASE), device="cpu", dtype=torch.float32)
    # its text encoder and tokenizer are mini-CLIP's (OpenCLIP's: pads with '!'), which is how SD 2.x reads too
    assert model.architecture == "sd2" and model.native_size == 64
    assert (BASE / "README.md").exists()
    prompt = "a young girl with pink long hair, wearing a ribbon, red shirt, on a beach"
    result = generate(model, GenerationParams(prompt=prompt, steps=8, width=64, height=64, seed=0,
                                              guidance_scale=5.0))
    picture = np.asarray(result.pictures[0].image)
    assert picture.shape == (64, 64, 3) and picture.std() > 10  # a picture, not a flat colour


def test_corrected_ema_removes_the_initial_weights(tmp_path):
    """n EMA updates towards fixed weights W leave decay**n of the initial weights; the export removes them."""
    from training.miniworld.pretrain import PretrainRun, ema_update

    run = PretrainRun(tmp_path, dataclasses.replace(MICRO, ema_decay=0.9))
    with torch.no_grad():
        for p in run.unet.parameters():
            p.add_(0.5)
    for _ in range(7):
        ema_update(run.ema, run.trainables(), 0.9)
    run.phase, run.step = "unet", 7
    corrected = run.ema_modules()["unet"].state_dict()
    raw = run.ema_modules(corrected=False)["unet"].state_dict()
    target = run.unet.state_dict()
    assert all(torch.allclose(corrected[k], target[k], atol=1e-5) for k in target)
    assert not all(torch.allclose(raw[k], target[k], atol=1e-3) for k in target)
