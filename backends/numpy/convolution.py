"""Convolution as im2col + batched matmul (BLAS), bias and activation after."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from tdn.backends.numpy.activations import activate

from tdn.layers.convolutional import Convolutional


def im2col(x: np.ndarray, layer: Convolutional, out_h: int, out_w: int) -> np.ndarray:
    """(N, C, H, W) -> (N, groups, C/groups * k * k, out_h * out_w)."""
    n, c, _, _ = x.shape
    g, k, s, p = layer.groups, layer.size, layer.stride, layer.padding
    if k == 1 and s == 1 and p == 0:
        return x.reshape(n, g, c // g, out_h * out_w)
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
    windows = sliding_window_view(padded, (k, k), axis=(2, 3))[:, :, ::s, ::s][:, :, :out_h, :out_w]
    windows = windows.reshape(n, g, c // g, out_h, out_w, k, k).transpose(0, 1, 2, 5, 6, 3, 4)
    return windows.reshape(n, g, (c // g) * k * k, out_h * out_w)


def convolve(x: np.ndarray, layer: Convolutional, weights: np.ndarray, biases: np.ndarray,
             out_h: int, out_w: int) -> np.ndarray:
    n = x.shape[0]
    g = layer.groups
    columns = im2col(x, layer, out_h, out_w)
    kernel = weights.reshape(g, layer.filters // g, -1)
    out = np.matmul(kernel, columns).reshape(n, layer.filters, out_h, out_w)
    out += biases.reshape(1, -1, 1, 1)
    return activate(out, layer.activation)
