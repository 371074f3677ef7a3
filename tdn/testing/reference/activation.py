"""Darknet's activations (activations.h) one value at a time, in double."""

from __future__ import annotations

import math


def activate(x: float, name: str) -> float:
    if name == "linear":
        return x
    if name == "leaky":
        return x if x > 0 else 0.1 * x
    if name == "relu":
        return x if x > 0 else 0.0
    if name == "logistic":
        return 1.0 / (1.0 + math.exp(-x))
    if name == "tanh":
        return math.tanh(x)
    raise NotImplementedError(f"the reference has no activation '{name}'")
