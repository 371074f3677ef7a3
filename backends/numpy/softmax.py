"""Darknet's softmax: per group, exp(x/t - max/t) normalised by its sum."""

from __future__ import annotations

import numpy as np

from tdn.layers.softmax import Softmax


def softmax(x: np.ndarray, layer: Softmax) -> np.ndarray:
    n = x.shape[0]
    groups = x.reshape(n, layer.groups, -1)
    t = np.float32(layer.temperature)
    e = np.exp(groups / t - groups.max(axis=2, keepdims=True) / t)
    e /= e.sum(axis=2, keepdims=True)
    return e.reshape(n, -1, 1, 1)
