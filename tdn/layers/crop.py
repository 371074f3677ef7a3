"""[crop]: Darknet's crop_layer.c at inference (CPU forward with train off).

Options: crop_height, crop_width (default 1), noadjust (default 0); flip, angle,
saturation, exposure and shift only act in training. No weights.
Shape: C x H x W -> C x crop_height x crop_width, the centre window starting at
((H - crop_height) / 2, (W - crop_width) / 2). Each value becomes 2x - 1 (the [0, 1]
image mapped to [-1, 1]) unless noadjust=1, which keeps it as it is.
Resizing scales both sides by crop_height / H of the cfg's size, truncated (resize_crop_layer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tdn.cfg import Section
from tdn.layers.base import Layer, Shape, ShapeError, Source


@dataclass(frozen=True)
class Crop(Layer):
    kind = "crop"
    resizable = True

    crop_height: int
    crop_width: int
    noadjust: bool

    @classmethod
    def from_section(cls, section: Section) -> Crop:
        section.accept("flip", "angle", "saturation", "exposure", "shift")
        return cls(crop_height=section.int("crop_height", 1, minimum=1),
                   crop_width=section.int("crop_width", 1, minimum=1),
                   noadjust=section.flag("noadjust"))

    @property
    def scale(self) -> float:
        """What Darknet multiplies each value by (it adds 2x - 1's -1 after)."""
        return 1.0 if self.noadjust else 2.0

    @property
    def shift(self) -> float:
        return 0.0 if self.noadjust else -1.0

    def output_shape(self, in_shape: Shape, sources: tuple[Source, ...] = ()) -> Shape:
        c, h, w = in_shape
        if self.crop_height > h or self.crop_width > w:
            raise ShapeError(f"a {self.crop_width}x{self.crop_height} crop does not fit the {w}x{h} input")
        return (c, self.crop_height, self.crop_width)

    def offsets(self, in_shape: Shape, out_shape: Shape) -> tuple[int, int]:
        """(top, left) of the centre window."""
        return (in_shape[1] - out_shape[1]) // 2, (in_shape[2] - out_shape[2]) // 2

    def resize_scale(self, cfg_in_shape: Shape) -> np.float32:
        """The float32 factor both sides of the window take at another input size: Darknet keeps
        scale = (float)crop_height / h from the cfg's size and truncates scale * size."""
        return np.float32(self.crop_height) / np.float32(cfg_in_shape[1])

    def at_size(self, cfg_in_shape: Shape, in_shape: Shape) -> Crop:
        if in_shape == cfg_in_shape:
            return self
        scale = self.resize_scale(cfg_in_shape)
        return replace(self, crop_height=int(scale * np.float32(in_shape[1])),
                       crop_width=int(scale * np.float32(in_shape[2])))

    def describe(self, in_shape: Shape, out_shape: Shape, sources: tuple[Source, ...] = ()) -> str:
        c, h, w = in_shape
        return f"Crop Layer: {h} x {w} -> {out_shape[1]} x {out_shape[2]} x {c} image"
