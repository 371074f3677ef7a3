"""Plain NumPy formulas of the array ops the CUDA kernels compute, whole-array and sliced.

tests/test_cuda_gpu.py checks every kernel against them; tests/test_cuda_host.py checks
them on the CPU against loops written the way Darknet's C writes those layers.
"""

from __future__ import annotations

import numpy as np
from tdn.backends.numpy.activations import activate


def connected(x: np.ndarray, weights: np.ndarray, bias: np.ndarray, activation: str) -> np.ndarray:
    """(batch, ...) flat in C order -> (batch, outputs); sums in float64."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    return activate((flat @ weights.T.astype(np.float64) + bias).astype(np.float32), activation)


def shortcut(x: np.ndarray, source: np.ndarray, alpha: float, beta: float, activation: str) -> np.ndarray:
    """x (N, C, H, W) with alpha * x + beta * source where they overlap, then the activation."""
    _, c, h, w = x.shape
    _, fc, fh, fw = source.shape
    stride, sample = max(fw // w, 1), max(w // fw, 1)
    mc, mh, mw = min(c, fc), min(h, fh), min(w, fw)
    out = x.copy()
    written = (slice(None), slice(0, mc), slice(0, mh * sample, sample), slice(0, mw * sample, sample))
    read = source[:, :mc, :mh * stride:stride, :mw * stride:stride]
    out[written] = np.float32(alpha) * x[written] + np.float32(beta) * read
    return activate(out, activation)


def route(inputs: list[np.ndarray], groups: int, group_id: int) -> np.ndarray:
    parts = []
    for array in inputs:
        part = array.shape[1] // groups
        parts.append(array[:, group_id * part:(group_id + 1) * part])
    return np.concatenate(parts, axis=1)


def upsample(x: np.ndarray, stride: int, scale: float) -> np.ndarray:
    return np.float32(scale) * x.repeat(stride, axis=2).repeat(stride, axis=3)


def batchnorm(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    return x * scale[None, :, None, None] + shift[None, :, None, None]


def crop(x: np.ndarray, out_h: int, out_w: int, noadjust: bool) -> np.ndarray:
    h, w = x.shape[2:]
    dy, dx = (h - out_h) // 2, (w - out_w) // 2
    scale, trans = (1, 0) if noadjust else (2, -1)
    return x[:, :, dy:dy + out_h, dx:dx + out_w] * np.float32(scale) + np.float32(trans)
