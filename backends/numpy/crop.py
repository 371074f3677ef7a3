"""Darknet's crop at inference: the centre window, mapped to 2x - 1 unless noadjust."""

from __future__ import annotations

import numpy as np

from tdn.layers.base import Shape
from tdn.layers.crop import Crop


def crop(x: np.ndarray, layer: Crop, out_shape: Shape) -> np.ndarray:
    """(N, C, H, W) -> (N, C, crop_height, crop_width); the same float32 operations as Darknet."""
    _, out_h, out_w = out_shape
    top, left = layer.offsets(x.shape[1:], out_shape)
    window = x[:, :, top:top + out_h, left:left + out_w]
    return window * np.float32(layer.scale) + np.float32(layer.shift)
