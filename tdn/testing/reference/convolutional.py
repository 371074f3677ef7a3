"""[convolutional] by its definition: for every output cell, the sum over its window of
input times weight, then Darknet's batch-norm, the bias and the activation, in float64.

The loops run over the kernel (group, input channel, kernel row, kernel column); each step
adds one weight times one shifted view of the zero-padded input to every output cell.
"""

from __future__ import annotations

import numpy as np

from tdn.graph import Node
from tdn.layers.convolutional import BATCHNORM_EPSILON, Convolutional
from tdn.testing.reference.activations import activate


def forward(node: Node, params: dict[str, np.ndarray], x: np.ndarray, sources: tuple[np.ndarray, ...]) -> np.ndarray:
    layer = node.layer_as(Convolutional)
    batch = x.shape[0]
    channels, _, _ = node.in_shape
    filters, out_h, out_w = node.out_shape
    p, s, k = layer.padding, layer.stride, layer.size
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))  # cells outside the input are 0
    weights = params["weights"]  # (filters, channels / groups, size, size)
    in_per_group, out_per_group = channels // layer.groups, filters // layer.groups
    out = np.zeros((batch, filters, out_h, out_w))
    for g in range(layer.groups):
        outputs = slice(g * out_per_group, (g + 1) * out_per_group)
        for c in range(in_per_group):
            for i in range(k):
                for j in range(k):
                    # Input cells (i + s*y, j + s*x) of channel c of group g, for every output (y, x).
                    window = padded[:, g * in_per_group + c, i:i + s * out_h:s, j:j + s * out_w:s]
                    out[:, outputs] += weights[outputs, c, i, j][None, :, None, None] * window[:, None]
    if layer.batch_normalize:
        # normalize_cpu, then scale_bias: (x - mean) / (sqrt(variance) + eps) * scale.
        mean, variance, scales = (params[name][None, :, None, None]
                                  for name in ("rolling_mean", "rolling_variance", "scales"))
        out = (out - mean) / (np.sqrt(variance) + float(BATCHNORM_EPSILON)) * scales
    out = out + params["biases"][None, :, None, None]
    return activate(out, layer.activation)
