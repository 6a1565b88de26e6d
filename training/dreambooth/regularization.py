"""Weight penalties: L2-SP toward the pretrained weights, plain L2 toward zero — applied as their gradients.

L2-SP: Li, Grandvalet & Davoine, "Explicit Inductive Bias for Transfer Learning with Convolutional
Networks", ICML 2018: Ω(θ) = λ·Σ‖θ − θ₀‖², θ₀ the pretrained starting point. It keeps a few-shot
fine-tune near the base model (less drift, less forgetting) where weight decay pulls toward zero.
For LoRA, θ − θ₀ is the learned delta ΔW = s·B·A of each adapted layer, so the penalty is
λ·Σ‖s·B·A‖² (the distance of the merged weights from the base weights).

Rather than adding Ω to the loss (an autograd graph over every trained tensor, every step), its exact
gradient is added to the gradients after backward, with torch._foreach_* kernels:

    full:  ∇Ω = 2λ(θ − θ₀)                          L2:  ∇Ω = 2λθ
    LoRA:  ∇_A Ω = 2λs²·(BᵀB)·A,  ∇_B Ω = 2λs²·B·(AAᵀ)  (r×r Gram matrices; ΔW is never built)

The optimizer, clipping and Adam's normalisation then see the same gradient as with the penalty in the
loss. The value of Ω is computed (under no_grad) only when it is logged.
"""
from dataclasses import dataclass, field

import torch

CHUNK = 64  # tensors per foreach call: bounds the temporary θ − θ₀ to a slice of the model


@dataclass
class Group:
    """The trained tensors of one network (UNet or text encoder), with what the penalties need."""
    params: list[torch.nn.Parameter]
    theta0: list[torch.Tensor] = field(default_factory=list)  # full fine-tune L2-SP: frozen copies
    lora: list[tuple[torch.Tensor, torch.Tensor, float]] = field(default_factory=list)  # (A, B, scale)


def lora_layers(model: torch.nn.Module) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    """(A (r, in), B (out, r), scale) for every peft LoRA linear layer and adapter of `model`."""
    layers = []
    for module in model.modules():
        lora_a = getattr(module, "lora_A", None)
        if isinstance(lora_a, torch.nn.ModuleDict):
            layers += [(lora_a[n].weight, module.lora_B[n].weight, float(module.scaling[n])) for n in lora_a]
    return layers


def group(model: torch.nn.Module, params: list[torch.nn.Parameter], l2sp: bool, is_lora: bool) -> Group:
    """A Group for `params` of `model`; θ₀ is copied (full) or the LoRA layers listed (LoRA) only for L2-SP."""
    if not l2sp:
        return Group(params)
    if is_lora:
        return Group(params, lora=lora_layers(model))
    return Group(params, theta0=[p.detach().clone() for p in params])


def _grads(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """The gradients of `params`, zeros where backward left none (the penalty still pulls those)."""
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    return [p.grad for p in params]


def _chunks(*lists):
    for i in range(0, len(lists[0]), CHUNK):
        yield tuple(seq[i:i + CHUNK] for seq in lists)


def _sum_sq(norms: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(norms).float().pow(2).sum()


def _total(terms: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(terms).sum() if terms else torch.zeros(())


class Regularizer:
    """λ_sp·Ω_SP + λ₂·Ω_L2 over the groups active at a step, applied to the gradients."""

    def __init__(self, groups: dict[str, Group], l2sp_weight: float, l2_weight: float):
        self.groups, self.l2sp_weight, self.l2_weight = groups, l2sp_weight, l2_weight

    @torch.no_grad()
    def apply(self, active: list[str], measure: bool) -> dict[str, torch.Tensor]:
        """Add the penalties' gradients to the active groups' .grad; with `measure`, also return their
        weighted values ({'l2sp', 'l2'}, 0-dim tensors, at the weights before this step's update)."""
        values = {"l2sp": [], "l2": []}
        for name in active:
            g = self.groups[name]
            if self.l2_weight:
                self._l2(g, values["l2"] if measure else None)
            if self.l2sp_weight and g.theta0:
                self._l2sp_full(g, values["l2sp"] if measure else None)
            if self.l2sp_weight and g.lora:
                self._l2sp_lora(g, values["l2sp"] if measure else None)
        if not measure:
            return {}
        return {"l2sp": self.l2sp_weight * _total(values["l2sp"]), "l2": self.l2_weight * _total(values["l2"])}

    def _l2(self, g: Group, out: list | None) -> None:
        if out is not None:
            out.append(_sum_sq(torch._foreach_norm(g.params)))
        torch._foreach_add_(_grads(g.params), g.params, alpha=2 * self.l2_weight)

    def _l2sp_full(self, g: Group, out: list | None) -> None:
        for params, theta0 in _chunks(g.params, g.theta0):
            diff = torch._foreach_sub(params, theta0)  # θ − θ₀, one chunk at a time
            if out is not None:
                out.append(_sum_sq(torch._foreach_norm(diff)))
            torch._foreach_add_(_grads(params), diff, alpha=2 * self.l2sp_weight)

    def _l2sp_lora(self, g: Group, out: list | None) -> None:
        grads_a, grads_b = _grads([a for a, _, _ in g.lora]), _grads([b for _, b, _ in g.lora])
        total = torch.zeros((), device=grads_a[0].device) if out is not None else None
        for (a, b, s), ga, gb in zip(g.lora, grads_a, grads_b):
            a32, b32 = a.float(), b.float()
            gram_a, gram_b = a32 @ a32.T, b32.T @ b32  # (r, r): AAᵀ and BᵀB
            c = 2 * self.l2sp_weight * s * s
            ga.add_((gram_b @ a32).to(ga.dtype), alpha=c)
            gb.add_((b32 @ gram_a).to(gb.dtype), alpha=c)
            if total is not None:
                total += s * s * (gram_a * gram_b).sum()  # ‖s·B·A‖² = s²·tr(BᵀB·AAᵀ)
        if out is not None:
            out.append(total)
