"""Darknet's 14 activations (activations.h) as torch expressions; constants as Darknet's.

torch's own selu uses other constants (1.0507009..., 1.6732632...) than Darknet's 1.0507 and
1.6732, so every formula is written out here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional


def _stair(x: torch.Tensor) -> torch.Tensor:
    n = torch.floor(x)
    half = torch.floor(x / 2)
    return torch.where(torch.remainder(n, 2) == 0, half, (x - n) + half)


def _exp_minus_one(x: torch.Tensor) -> torch.Tensor:
    return torch.expm1(torch.clamp(x, max=0))


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda x: x,
    "leaky": lambda x: functional.leaky_relu(x, 0.1),
    "relu": torch.relu,
    "logistic": torch.sigmoid,
    "loggy": lambda x: 2 * torch.sigmoid(x) - 1,
    "tanh": torch.tanh,
    "elu": lambda x: torch.where(x >= 0, x, _exp_minus_one(x)),
    "selu": lambda x: torch.where(x >= 0, 1.0507 * x, (1.0507 * 1.6732) * _exp_minus_one(x)),
    "relie": lambda x: functional.leaky_relu(x, 0.01),
    "ramp": lambda x: torch.relu(x) + 0.1 * x,
    "plse": lambda x: torch.where(x < -4, 0.01 * (x + 4), torch.where(x > 4, 0.01 * (x - 4) + 1, 0.125 * x + 0.5)),
    "stair": _stair,
    "hardtan": lambda x: torch.clamp(x, -1, 1),
    "lhtan": lambda x: torch.where(x < 0, 0.001 * x, torch.where(x > 1, 0.001 * (x - 1) + 1, x)),
}
