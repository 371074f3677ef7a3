"""[avgpool] by its definition (avgpool_layer.c): each channel's mean over all its cells."""

from __future__ import annotations

import numpy as np

from tdn.graph import Node


def forward(node: Node, params: dict[str, np.ndarray], x: np.ndarray, sources: tuple[np.ndarray, ...]) -> np.ndarray:
    _, height, width = node.in_shape
    return x.sum(axis=(2, 3), keepdims=True) / (height * width)
