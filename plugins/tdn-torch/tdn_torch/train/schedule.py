"""Darknet's learning-rate policies (network.c get_current_rate).

`batch_num` is Darknet's get_current_batch at the update: seen / (batch * subdivisions),
counted after the update's images, so the first update uses batch_num 1.
"""

from __future__ import annotations

import math

import numpy as np

from tdn_torch.train.options import TrainOptions


def learning_rate(options: TrainOptions, batch_num: int, rng: np.random.Generator | None = None) -> float:
    o = options
    if batch_num < o.burn_in:
        return o.learning_rate * (batch_num / o.burn_in) ** o.power
    if o.policy == "constant":
        return o.learning_rate
    if o.policy == "step":
        return o.learning_rate * o.scale ** (batch_num // o.step)
    if o.policy == "steps":
        rate = o.learning_rate
        for step, scale in zip(o.steps, o.scales):
            if step > batch_num:
                return rate
            rate *= scale
        return rate
    if o.policy == "exp":
        return o.learning_rate * o.gamma ** batch_num
    if o.policy == "poly":
        return o.learning_rate * (1 - batch_num / o.max_batches) ** o.power
    if o.policy == "sigmoid":
        return o.learning_rate / (1 + math.exp(o.gamma * (batch_num - o.step)))
    # random: a fresh uniform draw per update
    assert rng is not None, "policy=random draws from the update's generator"
    return o.learning_rate * float(rng.uniform(0, 1)) ** o.power
