"""Weight penalties added to the loss: L2-SP toward the pretrained weights, plain L2 toward zero.

L2-SP: Li, Grandvalet & Davoine, "Explicit Inductive Bias for Transfer Learning with Convolutional
Networks", ICML 2018: Ω(θ) = λ·Σ‖θ − θ₀‖², θ₀ the pretrained starting point. It keeps a few-shot
fine-tune near the base model (less drift, less forgetting) where weight decay pulls toward zero.
For LoRA, θ − θ₀ is the learned delta ΔW = scale·B·A of each adapted layer, so the penalty is
λ·Σ‖scale·B·A‖² (the distance of the merged weights from the base weights).
"""
import torch


class Anchor:
    """A frozen copy θ₀ of the trained parameters (full fine-tune), keyed by parameter name."""

    def __init__(self, named_params: dict[str, torch.nn.Parameter]):
        self.theta0 = {name: p.detach().clone() for name, p in named_params.items()}

    def penalty(self, named_params: dict[str, torch.nn.Parameter]) -> torch.Tensor:
        """Σ‖θ − θ₀‖² over `named_params` (a subset of the anchored names), a 0-dim tensor with grad."""
        terms = [(p.float() - self.theta0[name].to(p.device).float()).pow(2).sum()
                 for name, p in named_params.items()]
        return torch.stack(terms).sum() if terms else torch.zeros(())


def lora_deltas(model: torch.nn.Module):
    """Yield ΔW = scale·B·A (out, in) for every peft LoRA linear layer and adapter of `model`."""
    for module in model.modules():
        lora_a = getattr(module, "lora_A", None)
        if not isinstance(lora_a, torch.nn.ModuleDict):
            continue
        for name in lora_a:
            a, b = lora_a[name].weight, module.lora_B[name].weight  # (r, in), (out, r)
            yield module.scaling[name] * (b.float() @ a.float())


def lora_delta_penalty(models: list[torch.nn.Module]) -> torch.Tensor:
    """Σ‖scale·B·A‖² over the LoRA layers of `models`: L2-SP for LoRA."""
    terms = [delta.pow(2).sum() for model in models for delta in lora_deltas(model)]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def l2_penalty(params: list[torch.nn.Parameter]) -> torch.Tensor:
    """Σ‖θ‖² over the trained tensors (for LoRA: the A and B matrices)."""
    terms = [p.float().pow(2).sum() for p in params]
    return torch.stack(terms).sum() if terms else torch.zeros(())
