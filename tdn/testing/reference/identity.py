"""[cost] and [dropout]: at inference both pass their input through unchanged."""

from __future__ import annotations

import numpy as np

from tdn.graph import Node


def forward(node: Node, params: dict[str, np.ndarray], x: np.ndarray, sources: tuple[np.ndarray, ...]) -> np.ndarray:
    return x
