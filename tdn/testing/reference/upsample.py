"""[upsample]: out[y][x] = scale * in[y / stride][x / stride] (nearest neighbour)."""

from __future__ import annotations

import numpy as np


def forward(node, params, x, sources=()):
    layer = node.layer
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    s = layer.stride
    out = np.zeros((n, c, h * s, w * s))
    for b, k, i, j in np.ndindex(out.shape):
        out[b, k, i, j] = layer.scale * x[b, k, i // s, j // s]
    return out
