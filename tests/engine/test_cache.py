import pytest

from generator.engine.cache import ClipCache, PipelineCache
from generator.engine.clipscore import ClipUnavailable


def test_pipeline_cache_counts_loads_and_reuses(tiny_sd1_path):
    cache = PipelineCache(capacity=1)
    first = cache.get(str(tiny_sd1_path), device="cpu")
    again = cache.get(str(tiny_sd1_path), device="cpu")
    assert again is first and cache.loads == 1
    named = cache.get(str(tiny_sd1_path), device="cpu", name="retro-v1")
    assert named.name == "retro-v1" and named.pipeline is first.pipeline and cache.loads == 1


def test_pipeline_cache_is_lru_and_evicts_before_loading():
    loaded, sizes = [], []
    cache = PipelineCache(capacity=2)

    def fake_loader(source, **kwargs):
        sizes.append(len(cache))
        loaded.append(source)
        return type("Model", (), {"device": "cpu", "name": source, "source": source})()

    cache._loader = fake_loader
    for source in ["a", "b", "a", "c", "a", "b"]:
        cache.get(source, device="cpu")
    assert loaded == ["a", "b", "c", "b"]  # "a" stayed (recently used), "b" was evicted by "c"
    assert cache.loads == 4 and len(cache) == 2
    assert max(sizes) <= 1  # never more than capacity models alive during a load
    cache.clear()
    assert len(cache) == 0


def test_clip_cache_remembers_unavailable():
    calls = []

    def failing_loader(spec, device=None):
        calls.append(spec)
        raise ClipUnavailable(f"CLIP model {spec!r} is unavailable")

    cache = ClipCache(loader=failing_loader)
    for _ in range(3):
        with pytest.raises(ClipUnavailable):
            cache.get("ViT-H-14/laion2b_s32b_b79k", device="cpu")
    assert calls == ["ViT-H-14/laion2b_s32b_b79k"] and cache.loads == 1


def test_clip_cache_reuses_a_loaded_scorer(tiny_clip_dir):
    cache = ClipCache()
    spec = f"local-dir:{tiny_clip_dir}"
    assert cache.get(spec, device="cpu") is cache.get(spec, device="cpu")
    assert cache.loads == 1
