"""[shortcut]: Darknet's shortcut_cpu loop, in double: the input, with alpha * input +
beta * from where the two overlap (the larger one sampled at the size ratio)."""

from __future__ import annotations

import numpy as np

from tdn.testing.reference.activations import ACTIVATIONS


def forward(node, params, x, sources):
    layer = node.layer
    x = np.asarray(x, np.float64)
    add = np.asarray(sources[0], np.float64)
    n, c, h, w = x.shape
    _, c_add, h_add, w_add = add.shape
    stride = max(w_add // w, 1)
    sample = max(w // w_add, 1)
    out = x.copy()
    for b in range(n):
        for k in range(min(c, c_add)):
            for j in range(min(h, h_add)):
                for i in range(min(w, w_add)):
                    y, z = j * sample, i * sample
                    out[b, k, y, z] = layer.alpha * out[b, k, y, z] + layer.beta * add[b, k, j * stride, i * stride]
    return ACTIVATIONS[layer.activation](out)
