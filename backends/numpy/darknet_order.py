"""Layers computed in the original Darknet's float32 operation order, bit for bit.

Darknet's CPU gemm adds one product at a time along k into a zeroed output, batch-norm
runs after the convolution with its division in double, leaky is (float)(0.1*(double)x),
and the average pool and softmax sums run sequentially. Reproducing that order gives
Darknet's exact buffers for every layer before the softmax (the softmax differs by a few
ulps: libm's exp); any other order (BLAS, folded batch-norm) differs by a few ulps per layer.
"""

from __future__ import annotations

import numpy as np
from tdn.backends.numpy.activations import ACTIVATIONS
from tdn.backends.numpy.convolution import im2col

from tdn.layers.convolutional import BATCHNORM_EPSILON, Convolutional
from tdn.layers.softmax import Softmax


def activate_in_double(x: np.ndarray, name: str) -> np.ndarray:
    """Darknet's activations take float and return float but compute with double constants."""
    with np.errstate(over="ignore"):
        return ACTIVATIONS[name](x.astype(np.float64)).astype(np.float32)


def convolve_in_order(x: np.ndarray, layer: Convolutional, params: dict[str, np.ndarray],
                      out_h: int, out_w: int) -> np.ndarray:
    n, g = x.shape[0], layer.groups
    columns = im2col(x, layer, out_h, out_w)  # (n, g, K, P)
    kernel = params["weights"].reshape(g, layer.filters // g, -1)  # (g, M, K)
    out = np.zeros((n, g, kernel.shape[1], columns.shape[3]), np.float32)
    for k in range(kernel.shape[2]):
        out += kernel[None, :, :, k, None] * columns[:, :, None, k, :]
    out = out.reshape(n, layer.filters, out_h * out_w)
    if layer.batch_normalize:
        mean = params["rolling_mean"][:, None]
        root = np.sqrt(params["rolling_variance"].astype(np.float64))[:, None]
        out = ((out - mean) / (root + np.float64(BATCHNORM_EPSILON))).astype(np.float32)
        out = out * params["scales"][:, None]
    out = out + params["biases"][:, None]
    return activate_in_double(out, layer.activation).reshape(n, layer.filters, out_h, out_w)


def avgpool_in_order(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    total = np.cumsum(x.reshape(n, c, h * w), axis=2, dtype=np.float32)[:, :, -1]
    # Darknet is built with -Ofast, which turns the division into a reciprocal multiply.
    return (total * (np.float32(1) / np.float32(h * w))).reshape(n, c, 1, 1)


def softmax_in_order(x: np.ndarray, layer: Softmax) -> np.ndarray:
    n = x.shape[0]
    groups = x.reshape(n, layer.groups, -1)
    t = np.float32(layer.temperature)
    shifted = groups / t - groups.max(axis=2, keepdims=True) / t
    e = np.exp(shifted.astype(np.float64)).astype(np.float32)
    total = np.cumsum(e, axis=2, dtype=np.float32)[:, :, -1:]
    return (e / total).reshape(n, -1, 1, 1)
