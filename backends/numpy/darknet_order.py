"""Layers computed in the original Darknet's float32 operation order, bit for bit.

Darknet's CPU gemm adds one product at a time along k into a zeroed output, batch-norm
runs after the convolution with its division in double, leaky is (float)(0.1*(double)x),
and the average pool and softmax sums run sequentially. Reproducing that order gives
Darknet's exact buffers for every layer before the softmax (the softmax differs by a few
ulps: libm's exp); any other order (BLAS, folded batch-norm) differs by a few ulps per layer.

The connected layer's order (gemm_nt, below) follows what gcc -Ofast makes of Darknet's
loop; no Darknet buffer of a connected layer has checked it yet. Shortcut, route, crop,
upsample and dropout are the same float32 operations in both NumPy backends.
"""

from __future__ import annotations

import numpy as np
from tdn.backends.numpy.activations import ACTIVATIONS
from tdn.backends.numpy.convolution import im2col

from tdn.layers.connected import Connected
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
    products = np.zeros((n, g, kernel.shape[1], columns.shape[3]), np.float32)
    for k in range(kernel.shape[2]):
        products += kernel[None, :, :, k, None] * columns[:, :, None, k, :]
    out = products.reshape(n, layer.filters, out_h * out_w)
    out = normalize_add_bias_in_order(out, params, layer.batch_normalize)
    return activate_in_double(out, layer.activation).reshape(n, layer.filters, out_h, out_w)


def normalize_add_bias_in_order(out: np.ndarray, params: dict[str, np.ndarray], batch_normalize: bool) -> np.ndarray:
    """Darknet's inference batch-norm (normalize_cpu, scale_bias) then add_bias on (N, C, P)."""
    if batch_normalize:
        mean = params["rolling_mean"][:, None]
        root = np.sqrt(params["rolling_variance"].astype(np.float64))[:, None]
        out = ((out - mean) / (root + np.float64(BATCHNORM_EPSILON))).astype(np.float32)
        out = out * params["scales"][:, None]
    return out + params["biases"][:, None]


# gcc -Ofast vectorises gemm_nt's dot product (an inner reduction over k) with 4-float SSE
# lanes: lane l sums the products k = l, l+4, ... in order; the lanes combine as
# (l0 + l2) + (l1 + l3); the k % 4 tail is added one by one after.
GEMM_NT_LANES = 4


def connected_in_order(x: np.ndarray, layer: Connected, params: dict[str, np.ndarray]) -> np.ndarray:
    n = x.shape[0]
    inputs = x.reshape(n, -1)
    weights = params["weights"]  # (outputs, inputs)
    k = inputs.shape[1]
    body = k - k % GEMM_NT_LANES
    lanes = np.zeros((n, layer.outputs, GEMM_NT_LANES), np.float32)
    a = inputs[:, :body].reshape(n, -1, GEMM_NT_LANES)
    b = weights[:, :body].reshape(layer.outputs, -1, GEMM_NT_LANES)
    for step in range(body // GEMM_NT_LANES):
        lanes += a[:, None, step, :] * b[None, :, step, :]
    out = (lanes[:, :, 0] + lanes[:, :, 2]) + (lanes[:, :, 1] + lanes[:, :, 3])
    for column in range(body, k):
        out += inputs[:, None, column] * weights[None, :, column]
    out = normalize_add_bias_in_order(out[:, :, None], params, layer.batch_normalize)
    return activate_in_double(out, layer.activation).reshape(n, layer.outputs, 1, 1)


def batchnorm_in_order(x: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """A standalone [batchnorm]: Darknet's normalisation with its zero biases."""
    n, c, h, w = x.shape
    biases = {"biases": np.zeros(c, np.float32), **params}
    return normalize_add_bias_in_order(x.reshape(n, c, h * w), biases, True).reshape(n, c, h, w)


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
