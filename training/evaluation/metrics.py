"""Fine-tune metrics as pure functions of embeddings (no models, no I/O, no Django).

One shape of signature for every metric, as in k-diffusion's `evaluation.py`:

    metric(x: Tensor[N, D], y: Tensor[M, D] | None, ...) -> Tensor

`x` is always the *generated* images' embeddings (one row per image), `y` the other side (prompt
text embeddings, reference images, training images). Rows need not be L2-normalised: every metric
normalises first, so the encoder's scale never matters. Per-image metrics return Tensor[N] (so a
caller can store one row per image and average any subset: per prompt, per language); set metrics
return a 0-d Tensor. Results are float64 on the CPU and invariant to the order of the rows of x and
of y (they are means, maxima or sums over rows).

Embedding spaces: CLIP-T/CLIP score/CLIP-I take CLIP embeddings, `dino` takes DINO ViT-S/16 CLS
embeddings; `diversity`, `memorization`, `kid` and `fid` work in whatever space they are given
(the evaluation records which one it used).
"""
import torch
from torch import Tensor

from .config import NEAR_COPY_THRESHOLD

# A generated image whose cosine similarity to some training image is >= this, in DINO ViT-S/16
# CLS space, counts as a near copy. Why 0.9: DINO is trained by self-distillation to map different
# crops/colour jitters of ONE image to the same embedding, so an image and its re-encoded, resized,
# slightly cropped or recoloured copy score above ~0.9, while distinct pictures of the same style or
# character typically score ~0.4-0.8 (DreamBooth, Ruiz et al. 2023 §4.1, choose DINO over CLIP for
# exactly this instance sensitivity). Replication studies flag copies the same way, by thresholding a
# copy-detection similarity (Somepalli et al., "Diffusion Art or Digital Forgery?", CVPR 2023: SSCD
# > 0.5). It is a heuristic, not a law: the report plots every image's max similarity so the
# threshold can be checked against the actual training set, and evaluate() takes another value.
# The value lives in .config (EvalConfig's default), which imports no torch.


def _unit(x: Tensor, name: str) -> Tensor:
    if x.dim() != 2:
        raise ValueError(f"{name} must be a 2-d [count, dim] tensor, got shape {tuple(x.shape)}")
    return torch.nn.functional.normalize(x.detach().to("cpu", torch.float64), dim=-1)


def _pair(x: Tensor, y: Tensor, xname: str, yname: str) -> tuple[Tensor, Tensor]:
    x, y = _unit(x, xname), _unit(y, yname)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"{xname} and {yname} have different widths ({x.shape[1]} vs {y.shape[1]}): same encoder?")
    return x, y


def clip_t(image_emb: Tensor, text_emb: Tensor) -> Tensor:
    """CLIP-T: cosine between each generated image's CLIP embedding and its prompt's, Tensor[N] in [-1, 1].

    Prompt fidelity as in DreamBooth (Ruiz et al., "DreamBooth: Fine Tuning Text-to-Image Diffusion
    Models for Subject-Driven Generation", CVPR 2023, §4.1: "average cosine similarity between prompt
    and image CLIP embeddings"). Row i of image_emb pairs with row i of text_emb (both [N, D]).
    """
    x, y = _pair(image_emb, text_emb, "image_emb", "text_emb")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"clip_t pairs rows: {x.shape[0]} images but {y.shape[0]} texts")
    return (x * y).sum(dim=-1)


def clip_score(image_emb: Tensor, text_emb: Tensor) -> Tensor:
    """CLIPScore = 100 · max(cos, 0) per image, Tensor[N] in [0, 100].

    Hessel et al., "CLIPScore: A Reference-free Evaluation Metric for Image Captioning", EMNLP 2021
    (with w = 100, torchmetrics' `CLIPScore` convention; the paper's w = 2.5 is a rescaling).
    """
    return 100.0 * clip_t(image_emb, text_emb).clamp(min=0.0)


def _mean_cosine(gen_emb: Tensor, ref_emb: Tensor) -> Tensor:
    x, y = _pair(gen_emb, ref_emb, "gen_emb", "ref_emb")
    if y.shape[0] == 0:
        raise ValueError("no reference embeddings")
    return (x @ y.T).mean(dim=1)


def clip_i(gen_emb: Tensor, ref_emb: Tensor) -> Tensor:
    """CLIP-I: each generated image's mean cosine to all reference images (CLIP image space), Tensor[N].

    Subject fidelity as in DreamBooth (Ruiz et al. 2023 §4.1: "the average pairwise cosine similarity
    between CLIP embeddings of generated and real images"); `.mean()` of the result is exactly that
    average over all N·M pairs. It is 1 only when every generated and every reference image embed
    identically; for a set of distinct pictures compared with itself it is their mean pairwise
    similarity, below 1 by design.
    """
    return _mean_cosine(gen_emb, ref_emb)


def dino(gen_emb: Tensor, ref_emb: Tensor) -> Tensor:
    """DINO score: like `clip_i` but on DINO ViT-S/16 CLS embeddings, Tensor[N].

    Ruiz et al. 2023 §4.1 propose it because self-supervised DINO features, unlike CLIP's, separate
    different subjects of the same class (Caron et al., "Emerging Properties in Self-Supervised
    Vision Transformers", ICCV 2021).
    """
    return _mean_cosine(gen_emb, ref_emb)


def diversity(emb: Tensor, _unused: Tensor | None = None) -> Tensor:
    """Mean pairwise 1 − cosine among the images of ONE prompt (0-d Tensor; 0 for identical images).

    The intra-prompt diversity used by DreamBooth's prior-preservation study (Ruiz et al. 2023 §4.3
    measure it with LPIPS; here it is computed in the embedding space given). Fewer than two images
    have no pairs: the result is NaN, which callers skip when averaging.
    """
    x = _unit(emb, "emb")
    n = x.shape[0]
    if n < 2:
        return torch.tensor(float("nan"), dtype=torch.float64)
    sims = x @ x.T
    off_diagonal = sims.sum() - sims.diagonal().sum()
    return (1.0 - off_diagonal / (n * (n - 1))).clamp(min=0.0)


def memorization(gen_emb: Tensor, train_emb: Tensor, threshold: float = NEAR_COPY_THRESHOLD) -> tuple[Tensor, Tensor]:
    """(max_sim[N], near_copy_rate): each generated image's highest cosine to ANY training image, and
    the fraction of generated images with max_sim >= threshold (see NEAR_COPY_THRESHOLD for the default
    and why). Nearest-neighbour replication test of Somepalli et al., CVPR 2023, and Carlini et al.,
    "Extracting Training Data from Diffusion Models", USENIX Security 2023.
    """
    x, y = _pair(gen_emb, train_emb, "gen_emb", "train_emb")
    if y.shape[0] == 0:
        raise ValueError("no training embeddings")
    max_sim = (x @ y.T).max(dim=1).values
    rate = (max_sim >= threshold).double().mean() if x.shape[0] else torch.tensor(0.0, dtype=torch.float64)
    return max_sim, rate


def _poly_kernel(a: Tensor, b: Tensor) -> Tensor:
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def kid(gen_emb: Tensor, ref_emb: Tensor) -> Tensor:
    """Kernel Inception Distance: unbiased MMD² with the cubic polynomial kernel k(a,b) = (a·b/d + 1)³.

    Bińkowski et al., "Demystifying MMD GANs", ICLR 2018 (torchmetrics' `KernelInceptionDistance` with
    one subset of all samples gives the same number). Computed on the given embeddings (here CLIP image
    embeddings, L2-normalised), NOT on Inception-v3 pool features: Inception weights cannot be fetched
    offline, so values are comparable between our runs but not with published KID numbers. Unbiased,
    so usable with few images, but noisy below ~50 per side. Needs >= 2 rows on each side.
    """
    x, y = _pair(gen_emb, ref_emb, "gen_emb", "ref_emb")
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"KID needs at least 2 generated and 2 reference images (got {n} and {m})")
    k_xx, k_yy, k_xy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    return (
        (k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
        + (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
        - 2.0 * k_xy.mean()
    )


class _Embeddings(torch.nn.Module):
    """Identity 'feature extractor' so torchmetrics' FID runs on precomputed embeddings."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x


def fid(gen_emb: Tensor, ref_emb: Tensor) -> Tensor:
    """Fréchet distance between Gaussians fitted to the two embedding sets (Heusel et al., "GANs Trained
    by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017), computed by
    torchmetrics' `FrechetInceptionDistance` with the given embeddings as its custom feature extractor.

    Like `kid`, on our embeddings (CLIP image space), not Inception-v3: not comparable with published
    FIDs. FID is biased and its covariance needs many more samples than dimensions (a 1024-d CLIP
    ViT-H embedding wants thousands of images); with a few dozen images prefer KID. Raises ImportError
    without torchmetrics and ValueError with fewer than 2 rows on a side.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    x, y = _pair(gen_emb, ref_emb, "gen_emb", "ref_emb")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(f"FID needs at least 2 generated and 2 reference images (got {x.shape[0]} and {y.shape[0]})")
    metric = FrechetInceptionDistance(feature=_Embeddings(x.shape[1]), normalize=False)
    metric.update(y, real=True)
    metric.update(x, real=False)
    return metric.compute().to(torch.float64).clamp(min=0.0)
