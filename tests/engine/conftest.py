"""Session-wide tiny models for the engine tests, built offline through generator.engine.tiny.

Each model is built once per test session (a second or two each) in a temp folder; the loaded
pipelines are shared too. Tests must not mutate them (generate() never does).
"""
import os

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)  # tiny models on a busy 2-core machine: 1 thread is far faster


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny-models")


def _folder(root, kind):
    from generator.engine.tiny import save_tiny_model

    path = root / kind
    if not path.exists():
        save_tiny_model(kind, path)
    return path


@pytest.fixture(scope="session")
def tiny_sd1_path(tiny_models_dir):
    return _folder(tiny_models_dir, "sd1")


@pytest.fixture(scope="session")
def tiny_sd2_path(tiny_models_dir):
    return _folder(tiny_models_dir, "sd2")


@pytest.fixture(scope="session")
def tiny_sdxl_path(tiny_models_dir):
    return _folder(tiny_models_dir, "sdxl")


@pytest.fixture(scope="session")
def tiny_clip_dir(tiny_models_dir):
    from generator.engine.tiny import save_tiny_open_clip

    path = tiny_models_dir / "clip"
    if not path.exists():
        save_tiny_open_clip(path)
    return path


@pytest.fixture(scope="session")
def tiny_sd1(tiny_sd1_path):
    from generator.engine.loading import load_pipeline

    return load_pipeline(str(tiny_sd1_path), device="cpu", dtype=torch.float32)


@pytest.fixture(scope="session")
def tiny_sd2(tiny_sd2_path):
    from generator.engine.loading import load_pipeline

    return load_pipeline(str(tiny_sd2_path), device="cpu", dtype=torch.float32)


@pytest.fixture(scope="session")
def tiny_sdxl(tiny_sdxl_path):
    from generator.engine.loading import load_pipeline

    return load_pipeline(str(tiny_sdxl_path), device="cpu", dtype=torch.float32)


@pytest.fixture(scope="session")
def tiny_clip(tiny_clip_dir):
    from generator.engine.clipscore import load_clip

    return load_clip(f"local-dir:{tiny_clip_dir}", device="cpu")
