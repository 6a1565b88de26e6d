"""Pretrain the base mini model: a tiny Stable Diffusion (SD 1.x architecture) from scratch on the mini-world.

Phases, each resumable from an atomic checkpoint (``run_dir/checkpoint.pt``):

1. ``data``: a fixed pool of renders, generated once and saved in ``run_dir`` — modern renders with their
   attributes (captions are drawn from them at every step), plus a smaller retro pool used only by the VAE.
   Attribute combinations picked out by ``held_out`` never enter the pool; evaluation prompts come from them.
2. ``vae``: a small ``AutoencoderKL`` (64 px → 16×16×4 latents) on renders of BOTH styles: L1 + an L1 on
   image gradients (keeps outlines, dithering and grain sharp) + a small KL. A VAE that never saw retro
   grain could not decode it, and no fine-tune of the UNet could then reach the retro style.
3. ``latents``: the modern pool encoded once (mean and log-variance), so UNet steps skip the encoder.
4. ``unet``: ``UNet2DConditionModel`` + ``CLIPTextModel`` (real CLIP tokenizer) from scratch on modern
   latents only; epsilon prediction, DDPM 1000 steps (SD's scaled-linear betas), min-SNR-5 loss weights,
   caption dropout for classifier-free guidance and caption augmentation (phrases shuffled/dropped, neutral
   prefixes) so an unfamiliar phrase such as "retro anime style," does not break the rest of a prompt. An
   EMA of both is kept and exported.

Every step draws its randomness from generators seeded by (seed, phase, step), the models have no dropout and
the checkpoint holds optimiser, EMA and step, so a run stopped and resumed ends with the same weights as one run
straight through — up to float rounding (CPU summation order varies with buffer alignment; Adam can turn a 1e-7
gradient difference into ~lr on a parameter whose gradient is ~0). The learning rate is constant after warmup,
so a finished run can be extended with more steps. Django-free.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from generator.engine.files import write_atomic

from .attributes import Attributes
from .feature_loss import FeatureLoss
from .pretrain_export import to_float
from .pretrain_models import (SCHEDULE, build_pipeline, build_text_encoder, build_unet, build_vae, grow_attention,
                              load_initial_models)
from .pretrain_data import augment_caption, build_pool
from .text_encoder import text_encoder_from_dir
from .text_encoder import tokenizer as open_clip_tokenizer

PHASES = ("data", "vae", "latents", "unet", "done")


@dataclasses.dataclass
class PretrainConfig:
    seed: int = 0
    size: int = 64
    pool_modern: int = 16000  # modern renders (UNet and VAE)
    pool_retro: int = 4000  # retro renders (VAE only)
    # VAE
    vae_channels: tuple = (32, 64, 64)  # 3 blocks: 4x downscale, 64 px -> 16x16 latents
    latent_channels: int = 4  # SD's 4; more keep finer detail through the same 16x16 grid (SD3/FLUX use 16)
    vae_layers: int = 1
    vae_steps: int = 600
    vae_batch: int = 16
    vae_lr: float = 1e-3
    kl_weight: float = 1e-6
    grad_weight: float = 0.5
    vae_feature_from: str = ""  # an open_clip folder (mini-CLIP) for a perceptual loss on its ViT tokens
    vae_feature_weight: float = 0.5
    # UNet + text encoder
    unet_channels: tuple = (64, 128, 128)
    unet_layers: int = 1
    # First down block with attention (self-attention at 16x16 doubles the cost). With init_from, a lower value
    # grows the loaded UNet (pretrain_models.grow_attention: the new blocks start as identities).
    unet_attention_from: int = 1
    unet_heads: int = 8  # attention head dim
    text_hidden: int = 64
    text_layers: int = 3
    unet_steps: int = 3000
    unet_batch: int = 32
    unet_lr: float = 8e-4
    warmup: int = 200
    min_snr_gamma: float = 5.0
    ema_decay: float = 0.999
    caption_dropout: float = 0.1
    phrase_drop: float = 0.1
    shuffle_prob: float = 0.5
    prefix_prob: float = 0.5
    held_out_mod: int = 10  # attribute combinations with hash % mod == 0 never enter the pool
    encode_batch: int = 128
    log_every: int = 10
    # An exported pipeline folder (e.g. the shipped base) to continue from instead of random weights: its
    # VAE is kept (the vae phase is skipped), its UNet and text encoder train on; its architecture wins.
    init_from: str = ""
    # An open_clip folder (mini-CLIP) whose text tower becomes the text encoder, frozen as SD's CLIP is
    # (text_encoder.py); '' trains a CLIP text encoder from scratch with the UNet.
    text_encoder_from: str = ""
    # With text_encoder_from: 0 keeps the encoder frozen, as SD does; > 0 fine-tunes it at this learning rate,
    # "nearly frozen", with the UNet, so that words the contrastive tower barely separates (long / ponytail /
    # twin-tail hair: mean-token cosine ≥ 0.99) may move apart. On base-v5 they hardly did (bench.md, "v6").
    text_encoder_lr: float = 0.0
    # Caption language mix for the UNet (phrasing.describe): share of Indonesian captions, share of English
    # captions paraphrased (the rest use captions.caption's template).
    indonesian: float = 0.0
    paraphrase: float = 0.0
    # Share of UNet captions that open with a style phrase, retro or modern (phrasing.style_phrases), though
    # every picture is modern. The text encoder is frozen and knows "retro": without this, the UNet never sees
    # the person's words in a style phrase's context and misreads them there ("retro anime style, a young girl"
    # drew boys: gender 0.40 on base-v3). It cannot learn what retro looks like — no retro picture reaches the
    # UNet — so the style itself still comes from fine-tuning.
    style_words: float = 0.0


def _step_seed(seed: int, phase: str, step: int) -> int:
    return int(hashlib.sha256(f"{seed}/{phase}/{step}".encode()).hexdigest()[:12], 16)


def _generator(seed: int, phase: str, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(_step_seed(seed, phase, step))


# ------------------------------------------------------------------------------------------ training


def vae_loss(vae, x: torch.Tensor, gen: torch.Generator, cfg: PretrainConfig,
             features=None) -> tuple[torch.Tensor, dict]:
    """L1 + image-gradient L1 + small KL, plus `features`' perceptual distance (feature_loss.py) when given."""
    posterior = vae.encode(x).latent_dist
    z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen)
    recon = vae.decode(z).sample
    l1 = (recon - x).abs().mean()
    grad = ((recon.diff(dim=-1) - x.diff(dim=-1)).abs().mean() + (recon.diff(dim=-2) - x.diff(dim=-2)).abs().mean())
    kl = posterior.kl().mean() / x[0].numel()
    loss = l1 + cfg.grad_weight * grad + cfg.kl_weight * kl * x[0].numel()
    info = {"l1": l1.item(), "grad": grad.item()}
    if features is not None:
        perceptual = features(recon, x)
        loss = loss + cfg.vae_feature_weight * perceptual
        info["feature"] = perceptual.item()
    return loss, {"loss": loss.item(), **info}


def vae_batch(pool: dict, step: int, cfg: PretrainConfig) -> torch.Tensor:
    """Half modern, half retro (all modern if there is no retro pool)."""
    rng = np.random.default_rng(_step_seed(cfg.seed, "vae-batch", step))
    n_retro = cfg.vae_batch // 2 if len(pool["retro"]) else 0
    modern = pool["modern"][rng.integers(len(pool["modern"]), size=cfg.vae_batch - n_retro)]
    parts = [modern]
    if n_retro:
        parts.append(pool["retro"][rng.integers(len(pool["retro"]), size=n_retro)])
    return to_float(np.concatenate(parts))


@torch.no_grad()
def encode_pool(vae, images: np.ndarray, batch: int, progress: Callable[[int], None] | None = None) -> dict:
    means, logvars = [], []
    for i in range(0, len(images), batch):
        dist = vae.encode(to_float(images[i:i + batch])).latent_dist
        means.append(dist.mean)
        logvars.append(dist.logvar)
        if progress:
            progress(min(i + batch, len(images)))
    mean = torch.cat(means)
    return {"mean": mean, "logvar": torch.cat(logvars), "scaling_factor": float(1.0 / mean.std())}


def tokenize(tokenizer, texts: list[str]) -> torch.Tensor:
    return tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


def unet_loss(unet, text_encoder, tokenizer, scheduler, latents: dict, pool_attrs: list, step: int,
              cfg: PretrainConfig) -> tuple[torch.Tensor, dict]:
    gen = _generator(cfg.seed, "unet", step)
    rnd = random.Random(_step_seed(cfg.seed, "captions", step))
    idx = torch.randint(len(latents["mean"]), (cfg.unet_batch,), generator=gen)
    mean, logvar = latents["mean"][idx], latents["logvar"][idx]
    z = (mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen)) * latents["scaling_factor"]
    texts = [augment_caption(Attributes(**pool_attrs[int(i)]), rnd, cfg) for i in idx]
    hidden = text_encoder(tokenize(tokenizer, texts))[0]
    noise = torch.randn(z.shape, generator=gen)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (cfg.unet_batch,), generator=gen)
    noisy = scheduler.add_noise(z, noise, t)
    pred = unet(noisy, t, encoder_hidden_states=hidden).sample
    alpha_bar = scheduler.alphas_cumprod[t]
    snr = alpha_bar / (1 - alpha_bar)
    weight = torch.clamp(snr, max=cfg.min_snr_gamma) / snr  # min-SNR-gamma for epsilon prediction
    per_sample = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
    loss = (weight * per_sample).mean()
    return loss, {"loss": per_sample.mean().item(), "weighted": loss.item()}


def _lr_lambda(warmup: int):
    return lambda step: min(1.0, (step + 1) / max(1, warmup))  # constant after warmup: resumable at any length


@torch.no_grad()
def ema_update(ema: dict, modules: dict, decay: float) -> None:
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            if value.dtype.is_floating_point:
                ema[name][key].mul_(decay).add_(value, alpha=1 - decay)


# ---------------------------------------------------------------------------------------- checkpoint


def atomic_save(obj, path: Path) -> None:
    """torch.save through files.write_atomic (temp file, fsync, rename): a crash never leaves half a checkpoint."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(path, buffer.getbuffer())


def initial_models(cfg: PretrainConfig, pad_token_id: int) -> tuple:
    """(vae, text_encoder, unet) with their initial weights: the same for the same seed, every time
    (or the weights of cfg.init_from)."""
    pretrained = None
    if cfg.text_encoder_from:
        pretrained = text_encoder_from_dir(cfg.text_encoder_from).requires_grad_(cfg.text_encoder_lr > 0)
    if cfg.init_from:
        vae, text_encoder, unet = load_initial_models(cfg.init_from)
        return vae, pretrained or text_encoder, grow_attention(unet, cfg.unet_attention_from, cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        vae = build_vae(cfg)
        if pretrained is not None:  # the UNet cross-attends to the pretrained encoder's width
            return vae, pretrained, build_unet(dataclasses.replace(cfg, text_hidden=pretrained.config.hidden_size))
        return vae, build_text_encoder(cfg, pad_token_id), build_unet(cfg)


class PretrainRun:
    """Holds the models, optimisers and progress of a pretraining run in `run_dir`."""

    def __init__(self, run_dir: str | Path, cfg: PretrainConfig):
        from diffusers import DDPMScheduler

        from generator.engine.tiny import build_clip_tokenizer

        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cfg = cfg
        self.tokenizer = open_clip_tokenizer() if cfg.text_encoder_from else build_clip_tokenizer()
        self.scheduler = DDPMScheduler(**{k: v for k, v in SCHEDULE.items() if k != "set_alpha_to_one"})
        self.vae, self.text_encoder, self.unet = initial_models(cfg, self.tokenizer.pad_token_id)
        self.vae_opt = torch.optim.AdamW(self.vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
        self.opt = torch.optim.AdamW([{"params": list(m.parameters()), "lr": self.learning_rate(name)}
                                      for name, m in self.trainables().items()], lr=cfg.unet_lr, weight_decay=0.01)
        self.lr = torch.optim.lr_scheduler.LambdaLR(self.opt, _lr_lambda(cfg.warmup))
        self.ema = {name: {k: v.detach().clone() for k, v in m.state_dict().items()}
                    for name, m in self.trainables().items()}
        self.phase, self.step = "data", 0
        self.history = {"vae": [], "unet": []}  # [step, mean loss over the last log_every steps]
        self.elapsed = 0.0  # seconds in optimisation steps, over all sessions
        self.wall = 0.0  # wall-clock seconds of the whole run (data, steps, checkpoints), over all sessions
        self._session = time.monotonic()
        self.pool = self.latents = None

    def wall_seconds(self) -> float:
        return self.wall + time.monotonic() - self._session

    def trainables(self) -> dict:
        """The modules the optimiser and the EMA see: a frozen text encoder (cfg.text_encoder_from without
        cfg.text_encoder_lr) is not one."""
        if self.cfg.text_encoder_from and not self.cfg.text_encoder_lr:
            return {"unet": self.unet}
        return {"unet": self.unet, "text_encoder": self.text_encoder}

    def learning_rate(self, name: str) -> float:
        """A pretrained text encoder trains at its own (small) rate; one trained from scratch with the UNet's."""
        if name == "text_encoder" and self.cfg.text_encoder_from:
            return self.cfg.text_encoder_lr
        return self.cfg.unet_lr

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / "checkpoint.pt"

    def state(self) -> dict:
        return {
            "config": dataclasses.asdict(self.cfg), "phase": self.phase, "step": self.step,
            "history": self.history, "elapsed": self.elapsed, "wall": self.wall_seconds(),
            "vae": self.vae.state_dict(), "vae_opt": self.vae_opt.state_dict(),
            "unet": self.unet.state_dict(), "text_encoder": self.text_encoder.state_dict(),
            "opt": self.opt.state_dict(), "lr": self.lr.state_dict(), "ema": self.ema,
        }

    def save(self) -> Path:
        atomic_save(self.state(), self.checkpoint_path)
        return self.checkpoint_path

    def load(self) -> bool:
        if not self.checkpoint_path.exists():
            return False
        state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        for name in ("vae", "unet", "text_encoder"):
            getattr(self, name).load_state_dict(state[name])
        self.vae_opt.load_state_dict(state["vae_opt"])
        self.opt.load_state_dict(state["opt"])
        self.lr.load_state_dict(state["lr"])
        self.ema = state["ema"]
        self.phase, self.step = state["phase"], state["step"]
        self.history, self.elapsed = state["history"], state["elapsed"]
        self.wall, self._session = state.get("wall", 0.0), time.monotonic()
        return True

    # data files, written once per run
    def load_or_build_pool(self, progress=None) -> dict:
        path = self.dir / "pool.pt"
        if path.exists():
            self.pool = torch.load(path, weights_only=False)
        else:
            self.pool = build_pool(self.cfg, progress)
            atomic_save(self.pool, path)
        return self.pool

    def load_or_encode_latents(self, progress=None) -> dict:
        path = self.dir / "latents.pt"
        if path.exists():
            self.latents = torch.load(path, weights_only=False)
        else:
            self.vae.eval()
            self.latents = encode_pool(self.vae, self.pool["modern"], self.cfg.encode_batch, progress)
            if self.cfg.init_from:  # the UNet being continued learned latents scaled by its VAE's factor
                self.latents["scaling_factor"] = float(self.vae.config.scaling_factor)
            atomic_save(self.latents, path)
        return self.latents

    @property
    def ema_updates(self) -> int:
        return self.step if self.phase in ("unet", "done") else 0

    def ema_modules(self, corrected: bool = True):
        """Copies of the UNet and text encoder holding the EMA weights.

        The EMA starts from the initial weights, which still weigh decay**n after n updates (0.999**2000 = 14%);
        `corrected` removes them exactly — the initial weights are rebuilt from the seed — as Adam corrects
        its moments: (ema - decay**n * init) / (1 - decay**n)."""
        import copy

        n = self.ema_updates
        share = self.cfg.ema_decay ** n if corrected and n else 0.0
        if share:
            _, text0, unet0 = initial_models(self.cfg, self.tokenizer.pad_token_id)
            init = {"unet": unet0.state_dict(), "text_encoder": text0.state_dict()}
        out = {}
        for name, module in self.trainables().items():
            state = dict(self.ema[name])
            if share:
                state = {k: (v - share * init[name][k]) / (1 - share) if v.dtype.is_floating_point else v
                         for k, v in state.items()}
            clone = copy.deepcopy(module)
            clone.load_state_dict(state)
            out[name] = clone.eval()
        return out

    def pipeline(self, ema: bool = True):
        import copy

        modules = self.ema_modules() if ema else {k: copy.deepcopy(v).eval() for k, v in self.trainables().items()}
        vae = copy.deepcopy(self.vae).eval()
        if self.latents is not None:
            vae.register_to_config(scaling_factor=self.latents["scaling_factor"])
        text_encoder = modules.get("text_encoder") or copy.deepcopy(self.text_encoder).eval()
        return build_pipeline(vae, text_encoder, modules["unet"], self.tokenizer)


@dataclasses.dataclass
class Hooks:
    """Callbacks from `pretrain`: progress(phase, done, total, info=None) after every step / render / encoded
    batch (done counts from the run's start, so a resumed run reports its true position);
    should_stop(phase, step) -> bool before every step (True: checkpoint and return)."""

    progress: Callable[..., None] = lambda phase, done, total, info=None: None
    should_stop: Callable[[str, int], bool] = lambda phase, step: False
    checkpoint_seconds: float = 300.0
    checkpoint_every: int = 0  # steps; 0 = only by time and at phase ends


def _train_loop(run: PretrainRun, phase: str, total: int, step_fn, hooks: Hooks) -> bool:
    """Run steps run.step..total of `phase`; False if stopped early (checkpoint written)."""
    last_save, window = time.monotonic(), []
    while run.step < total:
        if hooks.should_stop(phase, run.step):
            run.save()
            return False
        started = time.perf_counter()
        info = step_fn(run.step)
        run.elapsed += time.perf_counter() - started
        run.step += 1
        window.append(info["loss"])
        if run.step % run.cfg.log_every == 0 or run.step == total:
            run.history[phase].append([run.step, float(np.mean(window))])
            window = []
        hooks.progress(phase, run.step, total, info)
        every = hooks.checkpoint_every and run.step % hooks.checkpoint_every == 0
        if every or time.monotonic() - last_save > hooks.checkpoint_seconds:
            run.save()
            last_save = time.monotonic()
    return True


def _vae_step(run: PretrainRun):
    features = FeatureLoss(run.cfg.vae_feature_from) if run.cfg.vae_feature_from else None

    def step(i: int) -> dict:
        run.vae.train()
        loss, info = vae_loss(run.vae, vae_batch(run.pool, i, run.cfg), _generator(run.cfg.seed, "vae", i), run.cfg,
                              features)
        run.vae_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(run.vae.parameters(), 1.0)
        run.vae_opt.step()
        return info
    return step


def _unet_step(run: PretrainRun):
    params = [p for m in run.trainables().values() for p in m.parameters()]

    def step(i: int) -> dict:
        for module in run.trainables().values():
            module.train()
        loss, info = unet_loss(run.unet, run.text_encoder, run.tokenizer, run.scheduler, run.latents,
                               run.pool["attrs"], i, run.cfg)
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        run.opt.step()
        run.lr.step()
        ema_update(run.ema, run.trainables(), run.cfg.ema_decay)
        return info
    return step


def saved_config(run_dir: str | Path, **overrides) -> PretrainConfig | None:
    """The config a run in `run_dir` was started with (None without a checkpoint), with `overrides` applied
    (e.g. more steps: phases are constant-LR after warmup, so a run can be extended)."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.exists():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=False)["config"]
    return dataclasses.replace(PretrainConfig(**saved), **overrides)


def pretrain(run_dir: str | Path, cfg: PretrainConfig, hooks: Hooks | None = None, resume: bool = True) -> PretrainRun:
    """Run (or continue) all phases in `run_dir`; returns the PretrainRun (phase 'done' unless stopped early)."""
    hooks = hooks or Hooks()
    run = PretrainRun(run_dir, cfg)
    if resume:
        run.load()
    elif run.checkpoint_path.exists():
        raise FileExistsError(f"{run.checkpoint_path} exists; resume it or pick another folder")
    run.load_or_build_pool(lambda n: hooks.progress("data", n, cfg.pool_modern + cfg.pool_retro))
    if run.phase == "data":
        run.phase, run.step = ("latents" if cfg.init_from else "vae"), 0
    if run.phase == "vae":
        if not _train_loop(run, "vae", cfg.vae_steps, _vae_step(run), hooks):
            return run
        run.phase, run.step = "latents", 0
        run.save()
    run.load_or_encode_latents(lambda n: hooks.progress("latents", n, cfg.pool_modern))
    if run.phase == "latents":
        run.phase, run.step = "unet", 0
        run.save()
    if run.phase == "done" and run.step < cfg.unet_steps:  # a finished run extended with more UNet steps
        run.phase = "unet"
    if run.phase == "unet":
        if not _train_loop(run, "unet", cfg.unet_steps, _unet_step(run), hooks):
            return run
        run.phase = "done"
        run.save()
    return run


