"""What every layer kind provides: its cfg options, shape rule and weights layout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from tdn.cfg import Section

Shape = tuple[int, int, int]
"""(channels, height, width) of one image's activations; vectors are (n, 1, 1)."""


class ShapeError(ValueError):
    """A layer that cannot accept its input shape; the graph adds the cfg location."""


@dataclass(frozen=True)
class Layer:
    kind: ClassVar[str]

    @classmethod
    def from_section(cls, section: Section) -> Layer:
        raise NotImplementedError

    def output_shape(self, in_shape: Shape) -> Shape:
        raise NotImplementedError

    def weight_layout(self, in_shape: Shape) -> list[tuple[str, tuple[int, ...]]]:
        """The arrays this layer reads from a .weights file, in file order."""
        return []

    def fold(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Turn the arrays as stored into what a backend computes with."""
        return raw

    def describe(self, in_shape: Shape, out_shape: Shape) -> str:
        """Darknet's line for this layer in its layer table, without the index."""
        raise NotImplementedError

    def flops(self, in_shape: Shape, out_shape: Shape) -> float:
        return 0.0
