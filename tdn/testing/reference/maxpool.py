"""[maxpool] by its definition (maxpool_layer.c forward_maxpool_layer).

Output cell (y, x) is the largest input cell in rows offset + s*y ... offset + s*y + size - 1
(columns likewise), offset = -padding/2; cells outside the input are skipped, and a window
holding none is -FLT_MAX, as in Darknet.
"""

from __future__ import annotations

import numpy as np

from tdn.graph import Node
from tdn.layers.maxpool import Maxpool

FLT_MAX = float(np.finfo(np.float32).max)


def forward(node: Node, params: dict[str, np.ndarray], x: np.ndarray, sources: tuple[np.ndarray, ...]) -> np.ndarray:
    layer = node.layer_as(Maxpool)
    _, height, width = node.in_shape
    _, out_h, out_w = node.out_shape
    out = np.full((x.shape[0], x.shape[1], out_h, out_w), -FLT_MAX)
    for y in range(out_h):
        for x_ in range(out_w):
            top, left = layer.offset + layer.stride * y, layer.offset + layer.stride * x_
            rows = slice(max(top, 0), min(top + layer.size, height))
            columns = slice(max(left, 0), min(left + layer.size, width))
            if rows.start < rows.stop and columns.start < columns.stop:
                out[:, :, y, x_] = x[:, :, rows, columns].max(axis=(2, 3))
    return out
