"""[route]: Darknet's route_layer.c, the outputs of earlier layers concatenated.

Options: layers (one or more comma-separated indices; negative counts back from this
layer, otherwise absolute), groups (default 1) and group_id (default 0), the channel
split AlexeyAB's Darknet added: from each source only the group_id-th of `groups`
equal channel slices is taken. No weights. Shape: every source must have the same width
and height; channels add up (each divided by groups).
"""

from __future__ import annotations

from dataclasses import dataclass

from tdn.cfg import Section
from tdn.errors import CfgError
from tdn.layers.base import Layer, Shape, ShapeError, Source


def _int_list(section: Section, key: str) -> tuple[int, ...]:
    values = section.int_list(key, "comma-separated layer indices")
    if values is None:
        raise CfgError(f"{section.where()}: [{section.header}] option '{key}' is required "
                       f"(the layers to concatenate)")
    return values


@dataclass(frozen=True)
class Route(Layer):
    kind = "route"
    resizable = True

    layers: tuple[int, ...]
    groups: int
    group_id: int

    @classmethod
    def from_section(cls, section: Section) -> Route:
        layers = _int_list(section, "layers")
        groups = section.int("groups", 1, minimum=1)
        group_id = section.int("group_id", 0, minimum=0)
        if group_id >= groups:
            raise CfgError(f"{section.where()}: [{section.header}] group_id={group_id} must be "
                           f"below groups={groups}")
        section.accept("stopbackward")
        return cls(layers=layers, groups=groups, group_id=group_id)

    def references(self) -> tuple[int, ...]:
        return self.layers

    def channels_taken(self, channels: int) -> slice:
        """The channels this layer takes from a source of `channels`: its group_id-th of `groups`
        equal slices (output_shape has checked that groups divides them)."""
        part = channels // self.groups
        return slice(self.group_id * part, (self.group_id + 1) * part)

    def output_shape(self, in_shape: Shape, sources: tuple[Source, ...] = ()) -> Shape:
        first_index, (_, height, width) = sources[0]
        channels = 0
        for index, (c, h, w) in sources:
            if (h, w) != (height, width):
                raise ShapeError(f"layer {index} outputs {w}x{h}, layer {first_index} outputs "
                                 f"{width}x{height}: routed layers need the same width and height")
            if c % self.groups:
                raise ShapeError(f"groups={self.groups} must divide layer {index}'s {c} channels")
            channels += c // self.groups
        return (channels, height, width)

    def describe(self, in_shape: Shape, out_shape: Shape, sources: tuple[Source, ...] = ()) -> str:
        line = "route " + "".join(f" {index}" for index, _ in sources)
        return line if self.groups == 1 else f"{line}  (group {self.group_id} of {self.groups})"
