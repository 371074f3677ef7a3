"""[shortcut]: Darknet's shortcut_layer.c, a residual sum with an earlier layer.

Options: from (required; negative counts back from this layer), activation (default
linear), alpha and beta (default 1). No weights. Shape: the input's.

The output starts as a copy of the input; where the two overlap, it becomes
alpha * input + beta * from. When the shapes differ Darknet samples the larger one
(blas.c shortcut_cpu): with stride = w_from / w_in and sample = w_in / w_from (each at
least 1), out[k, j*sample, i*sample] = alpha*out[...] + beta*from[k, j*stride, i*stride]
for k below the smaller channel count and i, j below the smaller width and height.
Darknet asserts that the width and height ratios agree, and its resize keeps only
shortcuts whose two inputs have the same width and height.
"""

from __future__ import annotations

from dataclasses import dataclass

from tdn.activations import ACTIVATIONS
from tdn.cfg import Section
from tdn.errors import CfgError
from tdn.layers.base import Layer, Shape, ShapeError, Source


@dataclass(frozen=True)
class Shortcut(Layer):
    kind = "shortcut"
    resizable = True

    source: int
    activation: str
    alpha: float
    beta: float

    @classmethod
    def from_section(cls, section: Section) -> Shortcut:
        if not section.has("from"):
            raise CfgError(f"{section.where()}: [{section.header}] option 'from' is required "
                           f"(the earlier layer to add)")
        section.accept("stopbackward")
        return cls(source=section.int("from", 0),
                   activation=section.choice("activation", "linear", ACTIVATIONS),
                   alpha=section.float("alpha", 1.0), beta=section.float("beta", 1.0))

    def references(self) -> tuple[int, ...]:
        return (self.source,)

    def output_shape(self, in_shape: Shape, sources: tuple[Source, ...] = ()) -> Shape:
        (index, from_shape), = sources
        self.overlap(in_shape, from_shape, f"layer {index}")  # refuses what Darknet's asserts refuse
        return in_shape

    @staticmethod
    def overlap(in_shape: Shape, from_shape: Shape,
                from_name: str = "the from layer") -> tuple[int, int, int, int, int]:
        """(channels, height, width, stride, sample) of the summed region, as Darknet's loop runs it;
        ShapeError where the width and height ratios differ (Darknet asserts they agree)."""
        (c, h, w), (c_from, h_from, w_from) = in_shape, from_shape
        if w_from // w != h_from // h or w // w_from != h // h_from:
            raise ShapeError(f"Darknet cannot add {from_name}'s {w_from}x{h_from} output to a "
                             f"{w}x{h} input (the width and height ratios differ)")
        return (min(c, c_from), min(h, h_from), min(w, w_from),
                max(w_from // w, 1), max(w // w_from, 1))

    def describe(self, in_shape: Shape, out_shape: Shape, sources: tuple[Source, ...] = ()) -> str:
        (index, (c2, h2, w2)), = sources
        c, h, w = out_shape
        return f"res  {index:3d}                {w2:4d} x{h2:4d} x{c2:4d}   ->  {w:4d} x{h:4d} x{c:4d}"

    def resize_refusal(self, in_shape: Shape, sources: tuple[Source, ...] = ()) -> str | None:
        (index, (_, h_from, w_from)), = sources
        if (h_from, w_from) != in_shape[1:]:
            return (f"Darknet's resize_shortcut_layer asserts that layer {index}'s output "
                    f"({w_from}x{h_from}) has the input's width and height ({in_shape[2]}x{in_shape[1]})")
        return None
