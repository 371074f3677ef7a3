"""A small random network and a folder of awkward images, for the batch pipeline's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tdn.graph import graph_from_text
from tdn.weights import random_params, write_weights

# Fully convolutional like Tiny Darknet, small enough that a test runs in milliseconds.
SMALL_CFG = """
[net]
height=32
width=32
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=10
size=1
stride=1
pad=1
activation=linear

[avgpool]

[softmax]
groups=1
"""


def write_small_net(folder: Path) -> tuple[Path, Path]:
    cfg = folder / "small.cfg"
    cfg.write_text(SMALL_CFG)
    graph = graph_from_text(SMALL_CFG, str(cfg))
    weights = folder / "small.weights"
    write_weights(weights, graph, random_params(graph, seed=3))
    return cfg, weights


def _pixels(rng: np.random.Generator, height: int, width: int, channels: int = 3) -> np.ndarray:
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def write_images(folder: Path, seed: int = 0) -> dict[str, list[Path]]:
    """Readable images of odd sizes and modes, and unreadable ones, under folder (nested)."""
    rng = np.random.default_rng(seed)
    (folder / "sub" / "deeper").mkdir(parents=True, exist_ok=True)
    good = []

    def save(name: str, image: Image.Image, **options) -> None:
        path = folder / name
        image.save(path, **options)
        good.append(path)

    save("a_odd.png", Image.fromarray(_pixels(rng, 37, 53)))
    save("b_grey.png", Image.fromarray(_pixels(rng, 40, 29, 1), "L"))
    save("c_palette.gif", Image.fromarray(_pixels(rng, 33, 33)).convert("P"))
    save("d_alpha.png", Image.fromarray(_pixels(rng, 45, 31, 4), "RGBA"))
    save("sub/e_photo.jpg", Image.fromarray(_pixels(rng, 48, 64)), quality=90)
    save("sub/f_same_aspect.jpg", Image.fromarray(_pixels(rng, 96, 128)), quality=90)
    save("sub/deeper/g_tall.bmp", Image.fromarray(_pixels(rng, 71, 17)))
    save("sub/deeper/h_square.png", Image.fromarray(_pixels(rng, 32, 32)))
    full = folder / "i_full.jpg"
    Image.fromarray(_pixels(rng, 50, 70)).save(full, quality=90)
    truncated = folder / "sub" / "truncated.jpg"
    truncated.write_bytes(full.read_bytes()[:200])
    full.unlink()
    text = folder / "sub" / "notes.jpg"
    text.write_text("this is not a picture\n")
    (folder / "readme.txt").write_text("not an image extension: directories skip it\n")
    return {"good": sorted(good), "bad": sorted([truncated, text])}
