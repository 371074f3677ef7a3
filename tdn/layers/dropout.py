"""[dropout]: random zeroing during training; the identity at inference (dropout_layer.c).

Darknet's resize_network has no case for it: a network with a dropout before its avgpool
cannot run at another input size.
"""

from __future__ import annotations

from dataclasses import dataclass

from tdn.cfg import Section
from tdn.layers.base import Layer, Shape, Source


@dataclass(frozen=True)
class Dropout(Layer):
    kind = "dropout"

    probability: float

    @classmethod
    def from_section(cls, section: Section) -> Dropout:
        return cls(probability=section.float("probability", 0.5))

    def output_shape(self, in_shape: Shape, sources: tuple[Source, ...] = ()) -> Shape:
        return in_shape

    def describe(self, in_shape: Shape, out_shape: Shape, sources: tuple[Source, ...] = ()) -> str:
        inputs = in_shape[0] * in_shape[1] * in_shape[2]
        return f"dropout       p = {self.probability:.2f}               {inputs:4d}  ->  {inputs:4d}"
