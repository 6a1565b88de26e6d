"""The penalties applied to the gradients give the same training as the penalty in the autograd loss."""
import pytest
import torch
import torch.nn.functional as F

from training.dreambooth import lora
from training.dreambooth.regularization import Regularizer, group


def _unet(base, method):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    if method == "lora":
        torch.manual_seed(5)  # the same random A in both copies
        params = lora.add_lora(unet, rank=4, alpha=2.0, targets=lora.UNET_TARGETS)
    else:
        params = list(unet.parameters())
    return unet.train(), params


def _autograd_penalty(unet, params, theta0, method, l2sp, l2):
    """λ_sp·Σ‖θ−θ₀‖² (LoRA: Σ‖s·B·A‖² over adapted layers) + λ₂·Σ‖θ‖², as a differentiable loss term."""
    total = l2 * sum(p.pow(2).sum() for p in params)
    if method == "full":
        total = total + l2sp * sum((p - p0).pow(2).sum() for p, p0 in zip(params, theta0))
    else:
        for module in unet.modules():
            if isinstance(getattr(module, "lora_A", None), torch.nn.ModuleDict):
                for name in module.lora_A:
                    delta = module.scaling[name] * module.lora_B[name].weight @ module.lora_A[name].weight
                    total = total + l2sp * delta.pow(2).sum()
    return total


def _batch(i):
    gen = torch.Generator().manual_seed(i)
    return (torch.randn(2, 4, 8, 8, generator=gen), torch.randint(0, 1000, (2,), generator=gen),
            torch.randn(2, 77, 32, generator=gen), torch.randn(2, 4, 8, 8, generator=gen))


@pytest.mark.parametrize("method,l2sp,l2", [("full", 20.0, 0.0), ("full", 0.0, 5.0), ("lora", 50.0, 0.0),
                                            ("lora", 0.0, 2.0), ("lora", 30.0, 1.0)])
def test_gradient_penalty_equals_autograd_penalty_after_k_steps(tiny_sd1, method, l2sp, l2):
    ref_unet, ref_params = _unet(tiny_sd1, method)
    unet, params = _unet(tiny_sd1, method)
    theta0 = [p.detach().clone() for p in ref_params]
    regularizer = Regularizer({"unet": group(unet, params, bool(l2sp), method == "lora")}, l2sp, l2)
    ref_opt, opt = (torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-2) for p in (ref_params, params))
    for i in range(4):
        latents, t, cond, target = _batch(i)
        ref_loss = F.mse_loss(ref_unet(latents, t, cond).sample, target)
        penalty = _autograd_penalty(ref_unet, ref_params, theta0, method, l2sp, l2)
        (ref_loss + penalty).backward()
        F.mse_loss(unet(latents, t, cond).sample, target).backward()
        measured = regularizer.apply(["unet"], measure=True)
        torch.testing.assert_close(measured["l2sp"] + measured["l2"], penalty.detach(), rtol=1e-4, atol=1e-9)
        for params_, opt_ in ((ref_params, ref_opt), (params, opt)):
            torch.nn.utils.clip_grad_norm_(params_, 1.0)
            opt_.step()
            opt_.zero_grad(set_to_none=True)
    assert penalty.item() > 1e-6  # the penalty did act on the weights compared
    moved = max((p - p0).abs().max().item() for p, p0 in zip(params, theta0))
    assert moved > 1e-3
    for ref, p in zip(ref_params, params):
        torch.testing.assert_close(p, ref, rtol=1e-4, atol=1e-6)

