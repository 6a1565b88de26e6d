"""The base model's frozen text encoder: mini-CLIP's open_clip text tower converted into a transformers
CLIPTextModel must compute the same token features, from the same token ids, as open_clip itself."""
import numpy as np
import open_clip
import pytest
import torch
from open_clip.model import CLIP

from training.miniworld import shipped
from training.miniworld.text_encoder import (load_open_clip_dir, open_clip_token_features, text_encoder_from_open_clip,
                                             tokenizer)

# No "!": transformers treats the pad token "!" as a special token and gives it id 0 inside a prompt too, where
# open_clip's BPE gives "!</w>" (256) — SD 2.x's tokenizer (pad "!") behaves the same way.
PROMPTS = ["retro anime style, an old man with glasses in a market",
           "seorang gadis berambut panjang merah muda, memegang payung, di pantai", "", "a girl (smiling), 1980s?"]


def _features_match(clip):
    ids_hf = tokenizer()(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    ids_oc = open_clip.get_tokenizer("ViT-B-32")(PROMPTS)
    assert torch.equal(ids_hf, ids_oc)  # the transformers tokenizer pads with "!" (id 0) as open_clip does
    with torch.no_grad():
        ours = text_encoder_from_open_clip(clip)(ids_hf).last_hidden_state
    theirs = open_clip_token_features(clip, ids_oc)
    assert ours.shape == theirs.shape == (len(PROMPTS), 77, clip.token_embedding.embedding_dim)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_shipped_miniclip_text_tower_converts_exactly():
    _features_match(load_open_clip_dir(shipped.MINICLIP))


@pytest.mark.parametrize("quick_gelu", [False, True])
def test_random_open_clip_text_tower_converts_exactly(quick_gelu):
    torch.manual_seed(0)
    clip = CLIP(embed_dim=16, quick_gelu=quick_gelu,
                vision_cfg={"image_size": 32, "layers": 1, "width": 32, "head_width": 8, "patch_size": 16},
                text_cfg={"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2}).eval()
    with torch.no_grad():  # non-trivial LayerNorm and bias values, so a swapped key cannot pass unnoticed
        for name, p in clip.named_parameters():
            if "ln" in name or "bias" in name:
                p.add_(torch.randn_like(p) * 0.1)
    _features_match(clip)


def test_feature_loss_is_zero_for_the_same_picture_and_grows_with_blur():
    from training.miniworld import Attributes, render
    from training.miniworld.feature_loss import FeatureLoss
    from training.miniworld.pretrain_export import to_float

    loss = FeatureLoss(shipped.MINICLIP)
    x = to_float(np.stack([np.asarray(render(Attributes(glasses="yes"), "retro", seed=s)).transpose(2, 0, 1)
                           for s in range(4)]))
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    same, soft, noise = loss(x, x), loss(blurred, x), loss(torch.rand_like(x) * 2 - 1, x)
    assert same.abs() < 1e-5 < soft < noise
    recon = blurred.clone().requires_grad_(True)
    loss(recon, x).backward()
    assert recon.grad.abs().sum() > 0 and not any(p.requires_grad for p in loss.parameters())


@pytest.mark.parametrize("base, miniclip", [("candidates/base-v2", "candidates/miniclip-v2"),
                                            ("weights/base", "weights/miniclip")])
def test_base_text_encoder_is_its_miniclip_text_tower_unchanged(base, miniclip):
    """A base's text encoder is its mini-CLIP's text tower, frozen through pretraining: the shipped base and the
    shipped scorer (CLIP scores, the bench's embedding metrics) read prompts with the same weights."""
    from transformers import CLIPTextModel

    root = shipped.WEIGHTS.parent
    saved = CLIPTextModel.from_pretrained(root / base / "text_encoder", dtype=torch.float32).state_dict()
    converted = text_encoder_from_open_clip(load_open_clip_dir(root / miniclip)).state_dict()
    assert saved.keys() == converted.keys()
    for key, value in converted.items():
        torch.testing.assert_close(saved[key], value.half().float(), rtol=0, atol=0, msg=key)
