"""[maxpool]: Darknet's maxpool_layer.c.

Darknet pads with `padding` cells in total (default size-1) and starts the first window
at -padding/2; cells outside the input never win the max (a window holding none gives
-FLT_MAX, the value Darknet starts from).
"""

from __future__ import annotations

from dataclasses import dataclass

from tdn.cfg import Section
from tdn.layers.base import Layer, Shape, ShapeError, Source


@dataclass(frozen=True)
class Maxpool(Layer):
    kind = "maxpool"
    resizable = True

    size: int
    stride: int
    padding: int

    @classmethod
    def from_section(cls, section: Section) -> Maxpool:
        stride = section.int("stride", 1, minimum=1)
        size = section.int("size", stride, minimum=1)
        return cls(size=size, stride=stride, padding=section.int("padding", size - 1, minimum=0))

    @property
    def pads(self) -> tuple[int, int]:
        """(before, after): the cells to add above and left, and below and right, of the input so
        that a plain pool (no padding, windows that fit) over the padded map runs Darknet's windows:
        the first starts at -padding/2 and (size + padding - window) / stride + 1 of them fit."""
        before = self.padding // 2
        return before, self.padding - before

    @property
    def offset(self) -> int:
        """Where the first window starts, in input cells."""
        return -self.pads[0]

    def output_shape(self, in_shape: Shape, sources: tuple[Source, ...] = ()) -> Shape:
        channels, height, width = in_shape
        span_h, span_w = height + self.padding - self.size, width + self.padding - self.size
        if span_h < 0 or span_w < 0:
            raise ShapeError(f"a {self.size}x{self.size} window with padding {self.padding} "
                             f"does not fit the {height}x{width} input")
        return (channels, span_h // self.stride + 1, span_w // self.stride + 1)

    def describe(self, in_shape: Shape, out_shape: Shape, sources: tuple[Source, ...] = ()) -> str:
        c, h, w = in_shape
        _, oh, ow = out_shape
        return (f"max          {self.size} x {self.size} / {self.stride}  "
                f"{w:4d} x{h:4d} x{c:4d}   ->  {ow:4d} x{oh:4d} x{c:4d}")
