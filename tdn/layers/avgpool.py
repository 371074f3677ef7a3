"""[avgpool]: Darknet's global average pool (avgpool_layer.c): C x H x W -> C."""

from __future__ import annotations

from dataclasses import dataclass

from tdn.cfg import Section
from tdn.layers.base import Layer, Shape, Source


@dataclass(frozen=True)
class Avgpool(Layer):
    kind = "avgpool"
    resizable = True

    @classmethod
    def from_section(cls, section: Section) -> Avgpool:
        return cls()

    def output_shape(self, in_shape: Shape, sources: tuple[Source, ...] = ()) -> Shape:
        return (in_shape[0], 1, 1)

    def describe(self, in_shape: Shape, out_shape: Shape, sources: tuple[Source, ...] = ()) -> str:
        c, h, w = in_shape
        return f"avg                     {w:4d} x{h:4d} x{c:4d}   ->  {c:4d}"
