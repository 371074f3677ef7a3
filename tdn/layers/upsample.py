"""[upsample]: Darknet's upsample_layer.c, nearest-neighbour upsampling, at inference.

Options: stride (default 2), scale (default 1): out[c, y, x] = scale * in[c, y/stride, x/stride].
A negative stride is Darknet's reverse (downsample) mode, which at inference writes into
its input rather than its output; tdn rejects it. No weights.
Shape: C x H x W -> C x H*stride x W*stride.
"""

from __future__ import annotations

from dataclasses import dataclass

from tdn.cfg import Section
from tdn.errors import CfgError
from tdn.layers.base import Layer, Shape, Source


@dataclass(frozen=True)
class Upsample(Layer):
    kind = "upsample"
    resizable = True

    stride: int
    scale: float

    @classmethod
    def from_section(cls, section: Section) -> Upsample:
        stride = section.int("stride", 2)
        if stride < 1:
            raise CfgError(f"{section.where()}: [{section.header}] stride={stride}: Darknet's reverse "
                           f"(downsampling) upsample is not supported by tdn; use a stride >= 1")
        return cls(stride=stride, scale=section.float("scale", 1.0))

    def output_shape(self, in_shape: Shape, sources: tuple[Source, ...] = ()) -> Shape:
        c, h, w = in_shape
        return (c, h * self.stride, w * self.stride)

    def describe(self, in_shape: Shape, out_shape: Shape, sources: tuple[Source, ...] = ()) -> str:
        c, h, w = in_shape
        _, oh, ow = out_shape
        return (f"upsample           {self.stride:2d}x  {w:4d} x{h:4d} x{c:4d}   ->  "
                f"{ow:4d} x{oh:4d} x{c:4d}")
