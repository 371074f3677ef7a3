"""Darknet's activation functions (activations.h).

Constants are Python floats so that, under NumPy 2's promotion rules, they take the
array's precision: float32 for the fast path, double for Darknet's order, where C
promotes the float to double against constants like .1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _stair(x: np.ndarray) -> np.ndarray:
    n = np.floor(x)
    half = np.floor(x / 2.0)
    return np.where(n % 2 == 0, half, (x - n) + half)


def _plse(x: np.ndarray) -> np.ndarray:
    return np.where(x < -4, 0.01 * (x + 4.0), np.where(x > 4, 0.01 * (x - 4.0) + 1.0, 0.125 * x + 0.5))


def _lhtan(x: np.ndarray) -> np.ndarray:
    return np.where(x < 0, 0.001 * x, np.where(x > 1, 0.001 * (x - 1.0) + 1.0, x))


def _exp_minus_one(x: np.ndarray) -> np.ndarray:
    return np.expm1(np.minimum(x, 0.0))


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "leaky": lambda x: np.where(x > 0, x, 0.1 * x),
    "relu": lambda x: np.maximum(x, 0.0),
    "logistic": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "loggy": lambda x: 2.0 / (1.0 + np.exp(-x)) - 1.0,
    "tanh": np.tanh,
    "elu": lambda x: np.where(x >= 0, x, _exp_minus_one(x)),
    "selu": lambda x: np.where(x >= 0, 1.0507 * x, (1.0507 * 1.6732) * _exp_minus_one(x)),
    "relie": lambda x: np.where(x > 0, x, 0.01 * x),
    "ramp": lambda x: np.maximum(x, 0.0) + 0.1 * x,
    "plse": _plse,
    "stair": _stair,
    "hardtan": lambda x: np.clip(x, -1.0, 1.0),
    "lhtan": _lhtan,
}


def activate(x: np.ndarray, name: str) -> np.ndarray:
    with np.errstate(over="ignore"):
        return ACTIVATIONS[name](x).astype(np.float32, copy=False)
