"""scikit-learn's handwritten digits (1,797 8x8 images) as class-folder trees of PNGs.

A stratified split, fixed by the seed: one fifth held out. Pixel values 0..16 become grey
levels round(v * 255 / 16).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_digits(root: Path, seed: int = 0, held_out: float = 0.2) -> tuple[Path, Path]:
    """Write root/train/<digit>/*.png and root/test/<digit>/*.png; return the two folders."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    pixels = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    indices = np.arange(len(pixels))
    train, test = train_test_split(indices, test_size=held_out, stratify=digits.target, random_state=seed)
    for part, chosen in (("train", train), ("test", test)):
        for i in chosen:
            folder = root / part / str(digits.target[i])
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels[i], mode="L").save(folder / f"{i:04d}.png")
    return root / "train", root / "test"
