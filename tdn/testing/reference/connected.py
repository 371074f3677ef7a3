"""[connected]: out[o] = act(bn(sum_i w[o][i] * x[i]) + bias[o]), x the flattened CHW input."""

from __future__ import annotations

import math

import numpy as np

from tdn.testing.reference.activations import ACTIVATIONS


def forward(node, params, x, sources=()):
    layer = node.layer
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    flat = x.reshape(n, -1)
    weights = params["weights"].astype(np.float64)
    out = np.zeros((n, layer.outputs, 1, 1))
    for b in range(n):
        for o in range(layer.outputs):
            total = 0.0
            for i in range(flat.shape[1]):
                total += weights[o, i] * flat[b, i]
            if layer.batch_normalize:
                root = math.sqrt(float(params["rolling_variance"][o]))
                total = float(params["scales"][o]) * (total - float(params["rolling_mean"][o])) / (root + 1e-6)
            out[b, o, 0, 0] = total + float(params["biases"][o])
    return ACTIVATIONS[layer.activation](out)
