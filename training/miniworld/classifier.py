"""Ground-truth classifiers: a small CNN that reads every attribute (and the style) back from a picture.

One conv trunk, one linear head per attribute plus ``style``; trained on fresh renders of both styles made
on the fly from a seeded Generator (each chunk of renders is used for a few passes, then replaced). The
shipped weights (``weights/classifier.safetensors``, fp16, + ``classifier.json`` with the config and the model
card) are what ``load_classifier()`` reads; ``manage.py miniworld_classifier`` reproduces them.

Used to score generated pictures of the mini-world: does the fine-tuned model draw the attributes the prompt
asked for, and in which style?
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from .attributes import HEADS, Style, sample_attributes
from .render import render

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "classifier.safetensors"


@dataclasses.dataclass
class ClassifierConfig:
    size: int = 64  # input side in pixels; other sizes are box-resized to it
    channels: tuple[int, ...] = (32, 48, 64, 96)  # one conv block (conv3x3, BN, ReLU, maxpool 2) each
    heads: dict[str, int] = dataclasses.field(default_factory=lambda: {k: len(v) for k, v in HEADS.items()})
    dropout: float = 0.1

    @classmethod
    def from_dict(cls, d: dict) -> "ClassifierConfig":
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})


@dataclasses.dataclass
class TrainConfig:
    steps: int = 600
    batch_size: int = 64
    chunk: int = 1024  # fresh renders per chunk
    passes: int = 2  # times each chunk is seen before it is replaced
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 1234
    size: int = 64
    augment: bool = True  # mild shifts, blur, noise, brightness: a judge for imperfect generated pictures


_BLURS = (0.5, 0.8, 1.2, 1.7)  # Gaussian sigmas in pixels: a generated picture is often soft


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, int(round(2.5 * sigma)))
    k = torch.exp(-(torch.arange(-r, r + 1, dtype=x.dtype) ** 2) / (2 * sigma**2))
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Label-preserving perturbations of a batch in [-1, 1]: a shift of up to 3 px, a Gaussian blur (sigma
    0.5–1.7 px) for half the pictures, noise for some, ±6% brightness. The generated pictures the classifier
    will judge are never as clean as renders."""
    n, _, h, w = x.shape
    dx, dy = (int(v) for v in torch.randint(-3, 4, (2,), generator=gen))
    x = F.pad(x, (3, 3, 3, 3), mode="replicate")[:, :, 3 + dy:3 + dy + h, 3 + dx:3 + dx + w]
    which = torch.randint(0, 2 * len(_BLURS), (n,), generator=gen)  # half the batch sharp, half blurred
    for i, sigma in enumerate(_BLURS):
        pick = (which == i).float().view(n, 1, 1, 1)
        if pick.any():
            x = pick * _blur(x, sigma) + (1 - pick) * x
    sigma = (torch.rand(n, 1, 1, 1, generator=gen) < 0.3).float() * torch.rand(n, 1, 1, 1, generator=gen) * 0.08
    x = x + sigma * torch.randn(x.shape, generator=gen)
    x = (x + 1) * (1 + (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.12) - 1
    return x.clamp_(-1, 1)


class AttributeClassifier(nn.Module):
    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        layers, c_in = [], 3
        for c_out in config.channels:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c_in = c_out
        self.trunk = nn.Sequential(*layers)
        side = config.size // 2 ** len(config.channels)
        self.drop = nn.Dropout(config.dropout)
        self.heads = nn.ModuleDict({name: nn.Linear(c_in * side * side, n) for name, n in config.heads.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.drop(self.trunk(x).flatten(1))
        return {name: head(h) for name, head in self.heads.items()}


def to_tensor(images: Sequence[Image.Image] | np.ndarray, size: int = 64) -> torch.Tensor:
    """Images (PIL, or uint8 NHWC array) → float NCHW in [-1, 1] at ``size``."""
    if isinstance(images, np.ndarray):
        arr = images
    else:
        arr = np.stack([np.asarray(_fit(im, size)) for im in images])
    if arr.shape[1] != size:
        arr = np.stack([np.asarray(_fit(Image.fromarray(a), size)) for a in arr])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def _fit(image: Image.Image, size: int) -> Image.Image:
    image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BOX)
    return image


def make_batch(rng: np.random.Generator, n: int, size: int = 64,
               styles: Sequence[Style] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``n`` fresh renders and their labels; styles drawn at random, or cycled through ``styles``."""
    images, labels = [], {name: [] for name in HEADS}
    for i in range(n):
        attrs = sample_attributes(rng)
        if styles:
            style = Style(styles[i % len(styles)])
        else:
            style = Style.RETRO if rng.random() < 0.5 else Style.MODERN
        images.append(np.asarray(render(attrs, style, size=size, seed=int(rng.integers(2**31)))))
        for name, value in attrs.labels(style).items():
            labels[name].append(value)
    return np.stack(images), {k: np.array(v) for k, v in labels.items()}


def train_classifier(config: ClassifierConfig | None = None, train: TrainConfig | None = None,
                     progress: Callable[[int, dict], None] | None = None) -> tuple[AttributeClassifier, dict]:
    """Train from scratch on renders made on the fly; returns the model (eval mode) and a summary."""
    config = config or ClassifierConfig()
    train = train or TrainConfig()
    torch.manual_seed(train.seed)
    gen = torch.Generator().manual_seed(train.seed)
    rng = np.random.default_rng(train.seed)
    model = AttributeClassifier(config)
    opt = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=train.lr, total_steps=train.steps, pct_start=0.15)
    start = time.time()
    render_s = 0.0
    chunk = max(train.batch_size, min(train.chunk, -(-train.steps * train.batch_size // train.passes)))
    images = labels = None
    order: list[int] = []
    seen = 0
    model.train()
    for step in range(train.steps):
        if len(order) < train.batch_size:
            if images is None or seen >= train.passes:
                t0 = time.time()
                images, labels = make_batch(rng, chunk, train.size)
                images = to_tensor(images, config.size)
                render_s += time.time() - t0
                seen = 0
            order = list(rng.permutation(len(images)))
            seen += 1
        idx = [order.pop() for _ in range(train.batch_size)]
        x = images[idx]
        if train.augment:
            x = augment(x, gen)
        out = model(x)
        losses = {k: F.cross_entropy(out[k], torch.from_numpy(labels[k][idx])) for k in config.heads}
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress(step, {"loss": loss.item()})
    model.eval()
    summary = {"steps": train.steps, "train_seconds": round(time.time() - start, 1),
               "render_seconds": round(render_s, 1), "renders": chunk * -(-train.steps * train.batch_size // (chunk * train.passes)),
               "train_config": dataclasses.asdict(train)}
    return model, summary


@torch.no_grad()
def predict(model: AttributeClassifier, images, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Class index per head for each image (PIL list or uint8 NHWC array)."""
    model.eval()
    preds: dict[str, list] = {k: [] for k in model.config.heads}
    for i in range(0, len(images), batch_size):
        x = to_tensor(images[i:i + batch_size], model.config.size)
        for k, v in model(x).items():
            preds[k].append(v.argmax(-1).numpy())
    return {k: np.concatenate(v) for k, v in preds.items()}


def evaluate(model: AttributeClassifier, n: int = 400, seed: int = 987654, size: int = 64) -> dict[str, float]:
    """Accuracy per head on ``n`` fresh renders, half of each style (a seed the training never uses)."""
    images, labels = make_batch(np.random.default_rng(seed), n, size, styles=list(Style))
    preds = predict(model, images)
    return {k: float((preds[k] == labels[k]).mean()) for k in model.config.heads}


def save_classifier(model: AttributeClassifier, path: str | Path, card: dict | None = None, fp16: bool = True) -> Path:
    """Weights as safetensors (fp16 by default) + ``<stem>.json`` beside them: config and model card."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if fp16 and v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})
    meta = {"config": dataclasses.asdict(model.config), "card": card or {}}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path


def load_classifier(path: str | Path | None = None) -> AttributeClassifier:
    """The shipped ground-truth classifier (or the one at ``path``), in float32 eval mode on the CPU."""
    from safetensors.torch import load_file

    path = Path(path) if path else DEFAULT_WEIGHTS
    meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    model = AttributeClassifier(ClassifierConfig.from_dict(meta["config"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    model.load_state_dict(state)
    model.card = meta.get("card", {})
    return model.eval()


_CACHED: dict[str, AttributeClassifier] = {}


def classify(images: Iterable[Image.Image], model: AttributeClassifier | None = None) -> list[dict]:
    """One dict per image: attribute name → predicted value name (e.g. "pink"), plus ``style``."""
    if model is None:
        model = _CACHED.get("default") or _CACHED.setdefault("default", load_classifier())
    images = list(images)
    if not images:
        return []
    preds = predict(model, images)
    return [{k: list(HEADS[k])[int(preds[k][i])].value for k in model.config.heads} for i in range(len(images))]


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads()}
