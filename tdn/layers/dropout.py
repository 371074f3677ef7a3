"""[dropout]: random zeroing during training; the identity at inference."""

from __future__ import annotations

from dataclasses import dataclass

from tdn.cfg import Section
from tdn.layers.base import Layer, Shape


@dataclass(frozen=True)
class Dropout(Layer):
    kind = "dropout"

    probability: float

    @classmethod
    def from_section(cls, section: Section) -> Dropout:
        return cls(probability=section.float("probability", 0.5))

    def output_shape(self, in_shape: Shape) -> Shape:
        return in_shape

    def describe(self, in_shape: Shape, out_shape: Shape) -> str:
        inputs = in_shape[0] * in_shape[1] * in_shape[2]
        return f"dropout       p = {self.probability:.2f}               {inputs:4d}  ->  {inputs:4d}"
