"""Loaded tiny pipelines for the engine tests (the folders come from tests/conftest.py).

The loaded pipelines are shared per session; tests must not mutate them (generate() never does).
"""
import os

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)  # tiny models on a busy 2-core machine: 1 thread is far faster


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
