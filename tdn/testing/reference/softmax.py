"""[softmax] by its definition (softmax_layer.c, blas.c softmax): the input flattened,
cut into `groups` equal parts, each exp(x/t - max/t) divided by the part's sum."""

from __future__ import annotations

import numpy as np

from tdn.graph import Node
from tdn.layers.softmax import Softmax


def forward(node: Node, params: dict[str, np.ndarray], x: np.ndarray, sources: tuple[np.ndarray, ...]) -> np.ndarray:
    layer = node.layer_as(Softmax)
    parts = x.reshape(x.shape[0], layer.groups, -1)
    t = layer.temperature
    e = np.exp(parts / t - parts.max(axis=2, keepdims=True) / t)
    return (e / e.sum(axis=2, keepdims=True)).reshape((x.shape[0],) + node.out_shape)
