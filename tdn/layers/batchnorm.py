"""[batchnorm]: Darknet's batchnorm_layer.c as a layer of its own, at inference.

No options. Shape: unchanged. Weights, in file order: scales, rolling_mean,
rolling_variance [C] each (Darknet keeps zero biases that are never stored).
y = scale * (x - mean) / (sqrt(variance) + .000001) + 0, per channel.
Darknet cannot resize it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tdn.cfg import Section
from tdn.layers.base import Layer, Shape, Source
from tdn.layers.convolutional import BATCHNORM_EPSILON


@dataclass(frozen=True)
class Batchnorm(Layer):
    kind = "batchnorm"

    @classmethod
    def from_section(cls, section: Section) -> Batchnorm:
        section.accept("learning_rate", "stopbackward")
        return cls()

    def output_shape(self, in_shape: Shape, sources: tuple[Source, ...] = ()) -> Shape:
        return in_shape

    def weight_layout(self, in_shape: Shape) -> list[tuple[str, tuple[int, ...]]]:
        c = in_shape[0]
        return [("scales", (c,)), ("rolling_mean", (c,)), ("rolling_variance", (c,))]

    def fold(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """y = x * scales + biases per channel."""
        factor = raw["scales"] / (np.sqrt(raw["rolling_variance"]) + BATCHNORM_EPSILON)
        return {"scales": factor.astype(np.float32),
                "biases": (-raw["rolling_mean"] * factor).astype(np.float32)}

    def folded_layout(self, in_shape: Shape) -> list[tuple[str, tuple[int, ...]]]:
        return [("scales", (in_shape[0],)), ("biases", (in_shape[0],))]

    def describe(self, in_shape: Shape, out_shape: Shape, sources: tuple[Source, ...] = ()) -> str:
        c, h, w = in_shape
        return f"Batch Normalization Layer: {w} x {h} x {c} image"
