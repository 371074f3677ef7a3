"""Darknet's upsample: each value repeated stride x stride times, times scale."""

from __future__ import annotations

import numpy as np

from tdn.layers.upsample import Upsample


def upsample(x: np.ndarray, layer: Upsample) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H*stride, W*stride); the same float32 product as Darknet."""
    s = layer.stride
    return np.repeat(np.repeat(x, s, axis=2), s, axis=3) * np.float32(layer.scale)
