"""What every layer kind provides: its cfg options, shape rule and weights layout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from tdn.cfg import Section

Shape = tuple[int, int, int]
"""(channels, height, width) of one image's activations; vectors are (n, 1, 1)."""

Source = tuple[int, Shape]
"""An earlier layer a multi-input layer (route, shortcut) reads: (absolute index, output shape)."""


class ShapeError(ValueError):
    """A layer that cannot accept its input shape; the graph adds the cfg location."""


@dataclass(frozen=True)
class Layer:
    kind: ClassVar[str]

    resizable: ClassVar[bool] = False
    """Whether Darknet's resize_network can run this kind at another input size."""

    transposed_when_flagged: ClassVar[tuple[str, ...]] = ()
    """Arrays a .weights file stores transposed when its header's major or minor is above 1000."""

    @classmethod
    def from_section(cls, section: Section) -> Layer:
        raise NotImplementedError

    def references(self) -> tuple[int, ...]:
        """Earlier layers this one also reads, as the cfg writes them (negative: relative)."""
        return ()

    def output_shape(self, in_shape: Shape, sources: tuple[Source, ...] = ()) -> Shape:
        raise NotImplementedError

    def weight_layout(self, in_shape: Shape) -> list[tuple[str, tuple[int, ...]]]:
        """The arrays this layer reads from a .weights file, in file order."""
        return []

    def fold(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Turn the arrays as stored into what a backend computes with."""
        return raw

    def folded_layout(self, in_shape: Shape) -> list[tuple[str, tuple[int, ...]]]:
        """The arrays `fold` returns, with their shapes: what a backend reads at inference."""
        return self.weight_layout(in_shape)

    def describe(self, in_shape: Shape, out_shape: Shape, sources: tuple[Source, ...] = ()) -> str:
        """Darknet's line for this layer in its layer table, without the index."""
        raise NotImplementedError

    def flops(self, in_shape: Shape, out_shape: Shape) -> float:
        return 0.0

    def resize_refusal(self, in_shape: Shape, sources: tuple[Source, ...] = ()) -> str | None:
        """Why Darknet's resize_network cannot resize this layer (None: it can)."""
        return None if self.resizable else f"Darknet cannot resize a [{self.kind}] layer"

    def at_size(self, cfg_in_shape: Shape, in_shape: Shape) -> Layer:
        """The layer as Darknet's resize leaves it when its input goes from the cfg's size to another."""
        return self
