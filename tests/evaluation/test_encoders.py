"""Metrics through the tiny random CLIP and DINO encoders, against independent computations."""
import subprocess
import sys

import pytest
import torch

from training.evaluation import metrics as M
from training.evaluation.encoders import EncoderUnavailable, load_clip_encoder, load_dino_encoder

from .conftest import random_pictures


def test_clip_t_agrees_with_a_direct_open_clip_computation(clip_encoder, tiny_clip_dir):
    import open_clip

    pictures = random_pictures(3, seed=1)
    texts = ["retro anime style, a girl with glasses", "gaya anime retro, seorang pria tua", "a bicycle in a village"]
    ours = M.clip_t(clip_encoder.embed_images(pictures), clip_encoder.embed_texts(texts))

    model, preprocess = open_clip.create_model_from_pretrained(f"local-dir:{tiny_clip_dir}", device="cpu")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{tiny_clip_dir}")
    model.eval()
    with torch.no_grad():
        image_features = model.encode_image(torch.stack([preprocess(p) for p in pictures]))
        text_features = model.encode_text(tokenizer(texts))
    direct = torch.nn.functional.cosine_similarity(image_features, text_features, dim=-1).double()
    assert torch.allclose(ours, direct, atol=1e-5)


def test_identical_picture_sets_give_clip_i_and_dino_one(clip_encoder, dino_encoder):
    picture = random_pictures(1, seed=2)[0]
    for encoder, metric in ((clip_encoder, M.clip_i), (dino_encoder, M.dino)):
        gen = encoder.embed_images([picture] * 3)
        ref = encoder.embed_images([picture.copy()] * 2)
        assert torch.allclose(metric(gen, ref), torch.ones(3, dtype=torch.float64), atol=1e-5)


def test_picture_order_changes_no_embedding_metric(clip_encoder, dino_encoder):
    pictures, refs = random_pictures(4, seed=3), random_pictures(3, seed=4)
    order, ref_order = [2, 0, 3, 1], [1, 2, 0]
    for encoder, metric in ((clip_encoder, M.clip_i), (dino_encoder, M.dino)):
        a = metric(encoder.embed_images(pictures), encoder.embed_images(refs))
        b = metric(encoder.embed_images([pictures[i] for i in order]), encoder.embed_images([refs[i] for i in ref_order]))
        assert torch.allclose(a[order], b, atol=1e-6)


def test_a_copied_training_picture_is_flagged_and_others_are_not(dino_encoder):
    train = random_pictures(4, seed=5)
    generated = random_pictures(3, seed=6)
    generated.insert(1, train[2].copy())
    max_sim, rate = M.memorization(dino_encoder.embed_images(generated), dino_encoder.embed_images(train), threshold=0.999)
    # A random tiny ViT maps every picture into a narrow cone (cosines ~0.95-0.99), so the threshold
    # is calibrated for it here; a real DINO ViT-S/16 uses the default of 0.9 (see metrics.py).
    assert max_sim[1].item() == pytest.approx(1.0, abs=1e-5)
    assert (max_sim >= 0.999).tolist() == [False, True, False, False]
    assert rate.item() == pytest.approx(0.25)


def test_unavailable_dino_model_fails_with_one_line_naming_the_flag(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EncoderUnavailable) as info:
        load_dino_encoder("facebook/dino-vits16")
    message = str(info.value)
    assert "\n" not in message and message.startswith("--dino-model 'facebook/dino-vits16'") and "--dino-model none" in message
    with pytest.raises(EncoderUnavailable, match="no such folder"):
        load_dino_encoder(str(tmp_path / "missing"))
    with pytest.raises(EncoderUnavailable, match="--dino-model"):
        load_dino_encoder(str(tmp_path))  # a folder without a model


def test_unavailable_clip_model_fails_with_one_line_naming_the_flag(tmp_path):
    with pytest.raises(EncoderUnavailable) as info:
        load_clip_encoder(f"local-dir:{tmp_path}")
    assert str(info.value).startswith("--clip-model") and "\n" not in str(info.value)


def test_the_evaluation_package_never_imports_django():
    code = (
        "import sys; import training.evaluation.metrics, training.evaluation.encoders, training.evaluation.evaluate, "
        "training.evaluation.prompt_suite, training.evaluation.report; "
        "training.evaluation.prompt_suite.load_suite(); "
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
