"""Darknet's max pool (out-of-range cells never win; a window holding none gives -FLT_MAX, the
value Darknet starts from) and global average pool."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tdn.layers.maxpool import Maxpool


def maxpool(x: np.ndarray, layer: Maxpool, out_h: int, out_w: int) -> np.ndarray:
    k, s = layer.size, layer.stride
    before, after = layer.pads
    padded = np.pad(x, ((0, 0), (0, 0), (before, after), (before, after)),
                    constant_values=np.finfo(np.float32).min)
    windows = sliding_window_view(padded, (k, k), axis=(2, 3))[:, :, ::s, ::s][:, :, :out_h, :out_w]
    return windows.max(axis=(4, 5))


def avgpool(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=(2, 3), dtype=np.float32, keepdims=True)
