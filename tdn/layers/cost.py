"""[cost]: a training loss in Darknet; at inference it passes its input through."""

from __future__ import annotations

from dataclasses import dataclass

from tdn.cfg import Section
from tdn.layers.base import Layer, Shape, Source

COST_TYPES = ("sse", "masked", "smooth", "L1", "seg", "wgan")


@dataclass(frozen=True)
class Cost(Layer):
    kind = "cost"
    resizable = True

    @classmethod
    def from_section(cls, section: Section) -> Cost:
        section.choice("type", "sse", COST_TYPES)
        section.accept("scale", "ratio", "noobject_scale", "thresh")
        return cls()

    def output_shape(self, in_shape: Shape, sources: tuple[Source, ...] = ()) -> Shape:
        return in_shape

    def describe(self, in_shape: Shape, out_shape: Shape, sources: tuple[Source, ...] = ()) -> str:
        inputs = in_shape[0] * in_shape[1] * in_shape[2]
        return f"cost                                           {inputs:4d}"
