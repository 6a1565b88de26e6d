"""Tiny Stable-Diffusion-architecture models built offline, for tests and for `make demo`.

Real weights cannot be downloaded here (and are gigabytes), yet every code path — loading,
architecture detection, schedulers, long prompts, PNG metadata, CLIP scores — should run for real.
These models have the exact component classes and wiring of SD 1.x, SD 2.x (v-prediction, '!'
padding) and SDXL (two text encoders, pooled embeddings, time ids), with a few thousand random
parameters each, built from fixed seeds so the same call gives the same weights on every machine.
Their pictures are noise; their plumbing is real.

The tokenizer is the real CLIP BPE tokenizer (vocabulary from the file open_clip ships, MIT), so
token counts — and therefore prompt chunking — behave as with real checkpoints.
"""
import functools
import gzip
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from .files import make_readable, publish_dir
from .loading import quiet_progress
from .portable import make_portable

KINDS = ("sd1", "sd2", "sdxl")
SD1_PAD = "<|endoftext|>"
SD2_PAD = "!"  # SD 2.x (OpenCLIP-trained) tokenizers pad with '!', id 0

# Exactly CLIP's BPE vocabulary: 256 byte symbols, 256 word-final symbols, 48894 merges, 2 specials.
_N_MERGES = 49152 - 256 - 2
# SD's training noise schedule; from_config drops the keys a given scheduler class does not take.
_SCHEDULER_BASE = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
    "set_alpha_to_one": False,
    "clip_sample": False,
}


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable unicode map (same table as open_clip and transformers)."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def _open_clip_bpe_path() -> str:
    """Path of open_clip's bundled BPE file, found without importing open_clip (its import takes ~3 s)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("open_clip_torch is not installed; it provides the CLIP BPE vocabulary")
    return os.path.join(spec.submodule_search_locations[0], "bpe_simple_vocab_16e6.txt.gz")


@functools.lru_cache(maxsize=1)
def _clip_vocab_and_merges() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    """CLIP's vocabulary and merge list, read once per process (the file is 1.3 MB gzipped)."""
    with gzip.open(_open_clip_bpe_path()) as f:
        lines = f.read().decode("utf-8").split("\n")[1 : _N_MERGES + 1]  # line 0 is a header
    merges = tuple(tuple(line.split()) for line in lines)
    byte_chars = list(_bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}, merges


def build_clip_tokenizer(pad_token: str = SD1_PAD):
    """A transformers CLIPTokenizer with CLIP's real vocabulary (49408 ids, 77-token window).

    pad_token '<|endoftext|>' is SD 1.x style, '!' is SD 2.x style. transformers 5's tokenizer takes
    the vocabulary and merges in memory, so no vocab.json/merges.txt files are needed; saving a
    pipeline writes the usual tokenizer files.
    """
    from transformers import CLIPTokenizer

    vocab, merges = _clip_vocab_and_merges()
    return CLIPTokenizer(vocab=dict(vocab), merges=list(merges), pad_token=pad_token, model_max_length=77)


def _seeded(seed: int, build):
    """Call `build()` with torch's global RNG seeded, restoring the caller's RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _text_encoder(seed: int, pad_token_id: int, with_projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=49408,
        max_position_embeddings=77,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=pad_token_id,
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        projection_dim=32,
        hidden_act="gelu",
    )
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return _seeded(seed, lambda: cls(config).eval())


def _unet(seed: int, sdxl: bool, in_channels: int = 4):
    from diffusers import UNet2DConditionModel

    common = dict(
        sample_size=8,
        in_channels=in_channels,  # 9 = an inpainting UNet (latents + mask + masked-picture latents)
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    )
    if sdxl:
        extra = dict(
            cross_attention_dim=64,  # text_encoder (32) and text_encoder_2 (32) hidden states, concatenated
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=6 * 8 + 32,  # 6 time ids * 8 + pooled text (32)
        )
    else:
        extra = dict(cross_attention_dim=32, attention_head_dim=4)
    return _seeded(seed, lambda: UNet2DConditionModel(**common, **extra).eval())


def _vae(seed: int):
    from diffusers import AutoencoderKL

    return _seeded(
        seed,
        lambda: AutoencoderKL(
            in_channels=3,
            out_channels=3,
            block_out_channels=(32, 64),
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            latent_channels=4,
            norm_num_groups=8,
            sample_size=64,
        ).eval(),
    )


def build_tiny_pipeline(kind: str = "sd1", seed: int = 0, inpainting: bool = False):
    """A tiny random-weight pipeline of architecture `kind` ('sd1', 'sd2' or 'sdxl'), deterministic in `seed`.

    sd1: epsilon prediction, PNDM scheduler (as SD 1.5 ships), tokenizer pads with <|endoftext|>.
    sd2: v-prediction, DDIM scheduler (as SD 2.1 ships), tokenizer pads with '!'.
    sdxl: StableDiffusionXLPipeline with CLIPTextModel + CLIPTextModelWithProjection and a
          "text_time" UNet, Euler scheduler (as SDXL base ships).
    inpainting=True (sd1/sd2) gives the UNet 9 input channels, as SD inpainting checkpoints have.
    """
    from diffusers import (
        DDIMScheduler,
        EulerDiscreteScheduler,
        PNDMScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
    )

    if kind not in KINDS:
        raise ValueError(f"unknown tiny model kind {kind!r}; use one of {', '.join(KINDS)}")
    pad = SD2_PAD if kind == "sd2" else SD1_PAD
    tokenizer = build_clip_tokenizer(pad)
    seed = seed * 100 + 10 * KINDS.index(kind)  # distinct weights (and model hashes) per kind
    vae = _vae(seed + 1)
    if kind == "sdxl":
        tokenizer_2 = build_clip_tokenizer(SD2_PAD)  # SDXL's second (OpenCLIP bigG) tokenizer pads with '!'
        pipe = StableDiffusionXLPipeline(
            vae=vae,
            text_encoder=_text_encoder(seed + 2, tokenizer.pad_token_id),
            text_encoder_2=_text_encoder(seed + 3, tokenizer_2.pad_token_id, with_projection=True),
            tokenizer=tokenizer,
            tokenizer_2=tokenizer_2,
            unet=_unet(seed + 4, sdxl=True),
            scheduler=EulerDiscreteScheduler.from_config({**_SCHEDULER_BASE, "timestep_spacing": "leading"}),
        )
    else:
        if kind == "sd1":
            scheduler = PNDMScheduler.from_config({**_SCHEDULER_BASE, "skip_prk_steps": True})
        else:
            scheduler = DDIMScheduler.from_config({**_SCHEDULER_BASE, "prediction_type": "v_prediction"})
        pipe = StableDiffusionPipeline(
            vae=vae,
            text_encoder=_text_encoder(seed + 2, tokenizer.pad_token_id),
            tokenizer=tokenizer,
            unet=_unet(seed + 4, sdxl=False, in_channels=9 if inpainting else 4),
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _publish(tmp_dir: str, out_dir: Path, overwrite: bool) -> Path:
    """Move a fully written temp folder into place, so readers never see a half-written model."""
    if out_dir.exists() and not overwrite:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise FileExistsError(f"{out_dir} already exists; pass overwrite=True to replace it")
    return publish_dir(tmp_dir, out_dir)


def save_tiny_model(kind: str, out_dir: str | os.PathLike, seed: int = 0, overwrite: bool = False,
                    inpainting: bool = False) -> Path:
    """Save a tiny pipeline as a diffusers folder (safetensors) at `out_dir`, atomically."""
    out_dir = Path(out_dir).absolute()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    pipe = build_tiny_pipeline(kind, seed=seed, inpainting=inpainting)
    tmp_dir = tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent)
    try:
        with quiet_progress():
            pipe.save_pretrained(tmp_dir, safe_serialization=True)
        make_portable(tmp_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return _publish(tmp_dir, out_dir, overwrite)


# OpenAI CLIP's normalization, open_clip's default preprocessing for its CLIP configs.
OPENAI_CLIP_PREPROCESS = {
    "mean": [0.48145466, 0.4578275, 0.40821073],
    "std": [0.26862954, 0.26130258, 0.27577711],
    "interpolation": "bicubic",
    "resize_mode": "shortest",
}
TINY_OPEN_CLIP_CONFIG = {
    "model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 8, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2},
    },
    "preprocess_cfg": OPENAI_CLIP_PREPROCESS,
}


def save_tiny_open_clip(out_dir: str | os.PathLike, seed: int = 0, overwrite: bool = False) -> Path:
    """Save a tiny random open_clip CLIP in open_clip's local-dir layout, atomically (see save_open_clip).

    The model is built straight from the config with `open_clip.model.CLIP`, so open_clip's global config
    registry is untouched.
    """
    from open_clip.model import CLIP

    model = _seeded(seed, lambda: CLIP(**TINY_OPEN_CLIP_CONFIG["model_cfg"]).eval())
    return save_open_clip(model, TINY_OPEN_CLIP_CONFIG, out_dir, overwrite=overwrite)


def save_open_clip(model, config: dict, out_dir: str | os.PathLike, overwrite: bool = False,
                   dtype: torch.dtype | None = None) -> Path:
    """Write an open_clip model in open_clip's local-dir layout, atomically.

    The folder holds `open_clip_config.json` ({"model_cfg", "preprocess_cfg"}) and
    `open_clip_model.safetensors`, which `open_clip.create_model_from_pretrained('local-dir:<dir>')`
    (and so `clipscore.load_clip('local-dir:<dir>')`) loads natively. `dtype` stores the weights cast
    (e.g. float16 to halve a shipped file; open_clip loads them into its fp32 model).
    """
    from safetensors.torch import save_file

    out_dir = Path(out_dir).absolute()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    state = {name: (tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor).contiguous()
             for name, tensor in model.state_dict().items()}
    tmp_dir = tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent)
    try:
        save_file(state, os.path.join(tmp_dir, "open_clip_model.safetensors"))
        with open(os.path.join(tmp_dir, "open_clip_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return _publish(tmp_dir, out_dir, overwrite)


def save_tiny_lora(kind: str, out_path: str | os.PathLike, seed: int = 0, rank: int = 4) -> Path:
    """Save a random (non-zero) LoRA for the tiny `kind` model's UNet attention as one .safetensors file.

    LoRA B matrices start at zero in training, which would make the LoRA a no-op; here both
    matrices are random so that applying it visibly changes the pictures. The file is in diffusers'
    LoRA format (`unet.…lora_A/lora_B` keys), what `pipe.load_lora_weights` reads.
    """
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    out_path = Path(out_path).absolute()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    pipe = build_tiny_pipeline(kind)
    config = LoraConfig(
        r=rank, lora_alpha=rank, init_lora_weights=False, target_modules=["to_q", "to_k", "to_v", "to_out.0"]
    )
    _seeded(seed + 7, lambda: pipe.unet.add_adapter(config))
    layers = get_peft_model_state_dict(pipe.unet)
    tmp_dir = tempfile.mkdtemp(prefix=f".{out_path.name}.", dir=out_path.parent)
    try:
        type(pipe).save_lora_weights(tmp_dir, unet_lora_layers=layers, safe_serialization=True)
        os.replace(make_readable(os.path.join(tmp_dir, "pytorch_lora_weights.safetensors")), out_path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return out_path


def save_tiny_upscaler(out_path: str | os.PathLike, scale: int = 2, seed: int = 0) -> Path:
    """Save a random ESRGAN (spandrel's RRDBNet, 8 filters, 1 block: 0.2 M parameters, 1 MB) at `scale`.

    The keys are the old-arch ESRGAN layout (`model.0.weight`, `model.1.sub.0.RDB1.conv1.0.weight`, ...)
    that spandrel detects as ESRGAN, with its scale read from the number of upsampling layers, as for a
    real 4x-UltraSharp. The last layer is centred on mid-grey (random weights alone give a picture clamped
    to black, where tiles and seams could not be told apart). A `.safetensors` path is written with
    safetensors; any other suffix (`.pth`) with torch.save, as the pickle files people download are.
    """
    from spandrel.architectures.ESRGAN import ESRGAN

    out_path = Path(out_path).absolute()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    model = _seeded(seed + 11, lambda: ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=scale))
    with torch.no_grad():
        model.model[-1].weight.mul_(3)
        model.model[-1].bias.fill_(0.5)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", dir=out_path.parent)
    os.close(fd)
    try:
        if out_path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(state, tmp)
        else:
            torch.save(state, tmp)
        os.replace(make_readable(tmp), out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path


def save_tiny_marian(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """A tiny random MarianMT translation model (folder MarianMTModel/MarianTokenizer load), built offline.

    The tokenizer is a real SentencePiece model trained here on a few Indonesian/English lines (so
    MarianTokenizer's code path is the one a real opus-mt model takes); the model's weights are random,
    so its "translations" are gibberish — its plumbing is real.
    """
    import io

    import sentencepiece
    from transformers import MarianConfig, MarianMTModel

    out_dir = Path(out_dir).absolute()
    lines = ["seorang gadis berambut merah di pantai", "a girl with red hair at the beach",
             "seorang kakek memakai kacamata", "an old man wearing glasses", "topi biru dan syal hijau",
             "a blue hat and a green scarf", "gaya anime retro", "retro anime style"] * 4
    model_bytes = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model_bytes, vocab_size=60, model_type="unigram",
        character_coverage=1.0, pad_id=-1, bos_id=-1, eos_id=-1, unk_id=0, hard_vocab_limit=False)
    processor = sentencepiece.SentencePieceProcessor(model_proto=model_bytes.getvalue())
    pieces = ["</s>", "<unk>", "<pad>"] + [processor.id_to_piece(i) for i in range(processor.get_piece_size())
                                           if processor.id_to_piece(i) not in ("<unk>",)]
    vocab = {piece: i for i, piece in enumerate(dict.fromkeys(pieces))}
    config = MarianConfig(vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                          decoder_ffn_dim=32, max_position_embeddings=64, pad_token_id=vocab["<pad>"],
                          eos_token_id=vocab["</s>"], decoder_start_token_id=vocab["<pad>"],
                          forced_eos_token_id=vocab["</s>"])
    model = _seeded(seed, lambda: MarianMTModel(config).eval())
    tmp_dir = tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent)
    try:
        for name in ("source.spm", "target.spm"):
            Path(tmp_dir, name).write_bytes(model_bytes.getvalue())
        Path(tmp_dir, "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        Path(tmp_dir, "tokenizer_config.json").write_text(json.dumps(
            {"tokenizer_class": "MarianTokenizer", "source_lang": "id", "target_lang": "en", "model_max_length": 64}),
            encoding="utf-8")
        model.save_pretrained(tmp_dir, safe_serialization=True)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return _publish(tmp_dir, out_dir, overwrite=False)
