"""Host-side geometry of the implicit-GEMM convolution (kernels/conv.cu): weight packing,
tile counts and the kernel's scalar arguments. Pure NumPy, testable without a GPU."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tdn.activations import ACTIVATIONS
from tdn.layers.base import Shape
from tdn.layers.convolutional import Convolutional

# conv.cu's tiling: the kernel gets these as compile-time definitions (kernels.DEFINES).
TILE_M = 64
TILE_N = 64
TILE_K = 16
THREADS = 256


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class ConvGeometry:
    """One convolution at one batch size, in the terms conv.cu uses."""

    batch: int
    channels: int
    height: int
    width: int
    filters: int
    out_h: int
    out_w: int
    size: int
    stride: int
    padding: int
    groups: int
    activation: str

    @classmethod
    def of(cls, layer: Convolutional, in_shape: Shape, out_shape: Shape, batch: int) -> ConvGeometry:
        return cls(batch, *in_shape, *out_shape, layer.size, layer.stride, layer.padding,
                   layer.groups, layer.activation)

    @property
    def k_group(self) -> int:
        """GEMM depth per group: input channels of a group x kernel cells."""
        return self.channels // self.groups * self.size * self.size

    @property
    def m_group(self) -> int:
        return self.filters // self.groups

    @property
    def k_pad(self) -> int:
        return round_up(self.k_group, TILE_K)

    @property
    def m_pad(self) -> int:
        return round_up(self.m_group, TILE_M)

    @property
    def pixels(self) -> int:
        return self.batch * self.out_h * self.out_w

    @property
    def grid(self) -> tuple[int, int, int]:
        return (round_up(self.pixels, TILE_N) // TILE_N, self.m_pad // TILE_M, self.groups)

    def scalars(self) -> tuple[int, ...]:
        """The int arguments after (x, w, bias, y), in conv.cu's CONV_PARAMS order."""
        values = (self.channels, self.height, self.width, self.filters, self.out_h, self.out_w,
                  self.size, self.stride, self.padding, self.groups, self.k_group, self.m_group,
                  self.k_pad, self.m_pad, self.pixels, ACTIVATIONS.index(self.activation))
        # Indices inside the kernels are 32-bit except the final element offsets.
        if self.pixels >= 2**31 or self.batch * self.channels * self.height * self.width >= 2**40:
            raise ValueError(f"convolution too large for 32-bit pixel indices: {self}")
        return values

    def pack_weights(self, weights: np.ndarray) -> np.ndarray:
        """(filters, C/groups, size, size) -> (groups, k_pad, m_pad) float32, zero-padded.

        k-major so that a tile's loads of consecutive filters are coalesced; padding to
        whole tiles lets the kernel load weights without bounds checks.
        """
        expected = (self.filters, self.channels // self.groups, self.size, self.size)
        if weights.shape != expected:
            raise ValueError(f"weights have shape {weights.shape}, expected {expected}")
        grouped = weights.reshape(self.groups, self.m_group, self.k_group).transpose(0, 2, 1)
        packed = np.zeros((self.groups, self.k_pad, self.m_pad), np.float32)
        packed[:, :self.k_group, :self.m_group] = grouped
        return packed
