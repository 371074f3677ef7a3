"""Darknet's shortcut: alpha * input + beta * an earlier layer's output where they overlap."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tdn.backends.numpy.activations import activate

from tdn.layers.shortcut import Shortcut


def shortcut(x: np.ndarray, source: np.ndarray, layer: Shortcut,
             activation: Callable[[np.ndarray, str], np.ndarray] = activate) -> np.ndarray:
    """x (N, C, H, W) and the `from` layer's output (N, C', H', W') -> (N, C, H, W).

    The sums are the same float32 operations as Darknet's (alpha*out + beta*add, no fused
    multiply-add), so the result is Darknet's bit for bit when `activation` is too."""
    channels, height, width, stride, sample = layer.overlap(x.shape[1:], source.shape[1:])
    out = x.copy()
    region = out[:, :channels, ::sample, ::sample][:, :, :height, :width]
    added = source[:, :channels, ::stride, ::stride][:, :, :height, :width]
    region[...] = np.float32(layer.alpha) * region + np.float32(layer.beta) * added
    return activation(out, layer.activation)
