"""Properties of the pure metric functions (no models)."""
import pytest
import torch

from training.evaluation import metrics as M

PER_IMAGE_VS_SET = (M.clip_i, M.dino)


def _emb(n, d=16, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_identical_sets_give_clip_i_and_dino_one():
    one = _emb(1)
    gen, ref = one.repeat(5, 1), one.repeat(3, 1) * 7.0  # scale never matters
    for metric in PER_IMAGE_VS_SET:
        assert torch.allclose(metric(gen, ref), torch.ones(5, dtype=torch.float64))


def test_clip_i_of_a_distinct_set_against_itself_is_its_mean_pairwise_similarity():
    x = _emb(4)
    unit = torch.nn.functional.normalize(x.double(), dim=-1)
    assert torch.isclose(M.clip_i(x, x).mean(), (unit @ unit.T).mean())
    assert M.clip_i(x, x).mean() < 1


def test_order_changes_no_metric():
    gen, text, ref = _emb(6, seed=1), _emb(6, seed=2), _emb(5, seed=3)
    p, q = torch.randperm(6, generator=torch.Generator().manual_seed(4)), torch.randperm(5, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(M.clip_t(gen[p], text[p]), M.clip_t(gen, text)[p])
    assert torch.allclose(M.clip_score(gen[p], text[p]), M.clip_score(gen, text)[p])
    for metric in PER_IMAGE_VS_SET:
        assert torch.allclose(metric(gen[p], ref[q]), metric(gen, ref)[p])
    assert torch.isclose(M.diversity(gen[p]), M.diversity(gen))
    sims, rate = M.memorization(gen, ref, 0.2)
    sims_p, rate_p = M.memorization(gen[p], ref[q], 0.2)
    assert torch.allclose(sims_p, sims[p]) and rate == rate_p
    assert torch.isclose(M.kid(gen[p], ref[q]), M.kid(gen, ref))
    assert torch.isclose(M.fid(gen[p], ref[q]), M.fid(gen, ref), rtol=1e-6, atol=1e-8)


def test_diversity_of_identical_images_is_zero_and_of_orthogonal_ones_is_one():
    assert M.diversity(_emb(1).repeat(4, 1)).item() == pytest.approx(0.0, abs=1e-12)
    assert M.diversity(torch.eye(3)).item() == pytest.approx(1.0)
    assert torch.isnan(M.diversity(_emb(1)))


def test_clip_t_is_rowwise_cosine_and_clip_score_clamps_at_zero():
    x, y = _emb(5, seed=6), _emb(5, seed=7)
    expected = torch.nn.functional.cosine_similarity(x.double(), y.double(), dim=-1)
    assert torch.allclose(M.clip_t(x, y), expected)
    assert torch.allclose(M.clip_score(x, y), 100 * expected.clamp(min=0))
    assert M.clip_score(x, -x).eq(0).all() and torch.allclose(M.clip_score(x, x), torch.full((5,), 100.0, dtype=torch.float64))


def test_memorization_flags_a_copied_training_image_only():
    train = _emb(8, d=64, seed=8)
    others = _emb(5, d=64, seed=9)
    generated = torch.cat([others[:2], train[3:4] * 2.0, others[2:]])
    max_sim, rate = M.memorization(generated, train, M.NEAR_COPY_THRESHOLD)
    assert max_sim[2].item() == pytest.approx(1.0)
    assert (max_sim >= M.NEAR_COPY_THRESHOLD).tolist() == [False, False, True, False, False, False]
    assert rate.item() == pytest.approx(1 / 6)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_matches_torchmetrics_with_one_subset_of_all_samples():
    from torchmetrics.image.kid import KernelInceptionDistance

    gen, ref = _emb(6, seed=10), _emb(6, seed=11) + 0.5
    unit = lambda t: torch.nn.functional.normalize(t.double(), dim=-1)  # noqa: E731
    kid = KernelInceptionDistance(feature=M._Embeddings(16), subsets=1, subset_size=6)
    kid.update(unit(ref), real=True)
    kid.update(unit(gen), real=False)
    assert torch.isclose(M.kid(gen, ref), kid.compute()[0].double(), rtol=1e-6, atol=1e-9)


def test_kid_and_fid_of_a_set_with_itself_are_zero_and_grow_with_a_shift():
    x = _emb(40, d=8, seed=12)
    assert M.fid(x, x).item() == pytest.approx(0.0, abs=1e-6)
    shifted = x + 3 * torch.nn.functional.normalize(torch.ones(1, 8), dim=-1)
    # KID is unbiased: around 0 (slightly negative for a set against itself), far below a shifted set's
    assert abs(M.kid(x, x)) < 0.1 * M.kid(shifted, x)
    assert M.fid(shifted, x) > 0.1


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="different widths"):
        M.clip_i(_emb(2, d=4), _emb(2, d=5))
    with pytest.raises(ValueError, match="2 texts"):
        M.clip_t(_emb(3), _emb(2))
    with pytest.raises(ValueError, match="at least 2"):
        M.kid(_emb(1), _emb(3))
