"""[crop] at inference: the centre crop_height x crop_width window, each value v as
2v - 1 (v with noadjust)."""

from __future__ import annotations

import numpy as np


def forward(node, params, x, sources=()):
    layer = node.layer
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    _, out_h, out_w = node.out_shape
    top, left = (h - out_h) // 2, (w - out_w) // 2
    scale, shift = (1.0, 0.0) if layer.noadjust else (2.0, -1.0)
    out = np.zeros((n, c, out_h, out_w))
    for b in range(n):
        for k in range(c):
            for i in range(out_h):
                for j in range(out_w):
                    out[b, k, i, j] = x[b, k, top + i, left + j] * scale + shift
    return out
