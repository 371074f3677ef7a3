"""Darknet's connected layer as one BLAS matmul over the flattened (CHW) input."""

from __future__ import annotations

import numpy as np
from tdn.backends.numpy.activations import activate

from tdn.layers.connected import Connected


def connected(x: np.ndarray, layer: Connected, weights: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, outputs, 1, 1); weights (outputs, C*H*W) with batch-norm folded."""
    n = x.shape[0]
    out = np.matmul(x.reshape(n, -1), weights.T)
    out += biases
    return activate(out, layer.activation).reshape(n, layer.outputs, 1, 1)
