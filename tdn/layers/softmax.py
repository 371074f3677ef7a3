"""[softmax]: Darknet's softmax_layer.c over the flattened input, in `groups` equal parts."""

from __future__ import annotations

from dataclasses import dataclass

from tdn.cfg import Section
from tdn.layers.base import Layer, Shape, ShapeError, Source


@dataclass(frozen=True)
class Softmax(Layer):
    kind = "softmax"

    groups: int
    temperature: float

    @classmethod
    def from_section(cls, section: Section) -> Softmax:
        section.forbid("tree", "hierarchical (tree) softmax is not supported")
        section.forbid("spatial", "spatial softmax is not supported")
        section.accept("noloss")
        return cls(groups=section.int("groups", 1, minimum=1),
                   temperature=section.float("temperature", 1.0, positive=True))

    def output_shape(self, in_shape: Shape, sources: tuple[Source, ...] = ()) -> Shape:
        inputs = in_shape[0] * in_shape[1] * in_shape[2]
        if inputs % self.groups:
            raise ShapeError(f"groups={self.groups} must divide the {inputs} inputs")
        return (inputs, 1, 1)

    def describe(self, in_shape: Shape, out_shape: Shape, sources: tuple[Source, ...] = ()) -> str:
        return f"softmax                                        {out_shape[0]:4d}"
