"""Tiny offline encoders and pictures for the evaluation tests (random weights, built from configs)."""
import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def tiny_dino_dir(tiny_models_dir):
    from training.evaluation.encoders import save_tiny_dino

    path = tiny_models_dir / "dino"
    if not path.exists():
        save_tiny_dino(path)
    return path


@pytest.fixture(scope="session")
def clip_encoder(tiny_clip_dir):
    from training.evaluation.encoders import load_clip_encoder

    return load_clip_encoder(f"local-dir:{tiny_clip_dir}", device="cpu")


@pytest.fixture(scope="session")
def dino_encoder(tiny_dino_dir):
    from training.evaluation.encoders import load_dino_encoder

    return load_dino_encoder(str(tiny_dino_dir), device="cpu")


def random_pictures(n: int, seed: int, size: int = 64) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    pictures = []
    for _ in range(n):
        # smooth random blobs + noise: unlike pure noise, these differ in layout and colour
        base = rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)
        image = Image.fromarray(base).resize((size, size), Image.BICUBIC)
        noise = rng.integers(-20, 20, (size, size, 3))
        pictures.append(Image.fromarray(np.clip(np.asarray(image, dtype=np.int64) + noise, 0, 255).astype(np.uint8)))
    return pictures


@pytest.fixture(scope="session")
def references_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("references")
    for i, picture in enumerate(random_pictures(3, seed=11)):
        picture.save(folder / f"{i:04d}.png")
    return folder
