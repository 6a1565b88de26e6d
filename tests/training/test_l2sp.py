"""L2-SP (Li et al., ICML 2018): a large λ holds the weights at θ₀; the logged penalty is λ·Σ‖θ−θ₀‖²."""
import csv

import pytest
import torch

from training.dreambooth import train

from .conftest import load_safetensors


def _base_unet(base):
    from diffusers import UNet2DConditionModel

    return dict(UNet2DConditionModel.from_pretrained(base, subfolder="unet").named_parameters())


def _distance2(out, base_params):
    from diffusers import UNet2DConditionModel

    tuned = dict(UNet2DConditionModel.from_pretrained(out, subfolder="unet").named_parameters())
    return sum((tuned[k] - base_params[k]).pow(2).sum().item() for k in base_params)


def _logged(out, step, column="l2sp"):
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    return float(rows[step - 1][column])


def test_large_lambda_keeps_weights_near_pretrained(make_cfg, tiny_sd1):
    common = dict(method="full", max_steps=6, learning_rate=1e-3, adam_weight_decay=0)
    base = _base_unet(tiny_sd1)
    free = _distance2(train(make_cfg("free", l2sp_weight=0, **common)).out, base)
    held = _distance2(train(make_cfg("held", l2sp_weight=1e4, **common)).out, base)
    assert free > 1.0
    assert held < 0.05 * free


def test_logged_penalty_full_matches_weights(make_cfg, tiny_sd1):
    lam = 3.0
    out = train(make_cfg(method="full", l2sp_weight=lam, learning_rate=1e-3, checkpoint_steps=1,
                         checkpoints_total_limit=5)).out
    after_step1 = load_safetensors(out / "checkpoint-1" / "model.safetensors")
    base = _base_unet(tiny_sd1)
    expected = lam * sum((after_step1[k] - base[k]).pow(2).sum().item() for k in base)
    assert _logged(out, 1) == 0.0  # θ = θ₀ before the first update
    assert _logged(out, 2) == pytest.approx(expected, rel=1e-4)


def test_logged_penalty_lora_is_on_the_delta(make_cfg):
    lam, rank, alpha = 2.0, 4, 2.0
    out = train(make_cfg(method="lora", rank=rank, alpha=alpha, l2sp_weight=lam, learning_rate=1e-2,
                         checkpoint_steps=1, checkpoints_total_limit=5)).out
    state = load_safetensors(out / "checkpoint-1" / "model.safetensors")
    deltas = [(alpha / rank) * state[k.replace("lora_A", "lora_B")] @ state[k] for k in state if "lora_A" in k]
    assert deltas
    expected = lam * sum(d.pow(2).sum().item() for d in deltas)
    assert expected > 0
    assert _logged(out, 2) == pytest.approx(expected, rel=1e-4)
    assert torch.isfinite(torch.tensor(_logged(out, 2)))


def test_penalties_are_measured_on_logging_steps_and_every_step_keeps_its_diffusion_loss(make_cfg):
    progress = []
    out = train(make_cfg(method="lora", l2sp_weight=1.0, learning_rate=1e-2, max_steps=5, log_every=2),
                on_progress=lambda step, total, logs: progress.append(step)).out
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5] and progress == [1, 2, 3, 4, 5]
    assert all(float(r["diffusion_loss"]) > 0 for r in rows)
    measured = [int(r["step"]) for r in rows if r["l2sp"]]
    assert measured == [1, 2, 4, 5]  # the first step, every 2nd, the last
    assert all(bool(r["loss"]) == bool(r["l2sp"]) for r in rows)  # the total includes the penalty
    assert float(rows[3]["loss"]) == pytest.approx(float(rows[3]["diffusion_loss"]) + float(rows[3]["l2sp"]))
