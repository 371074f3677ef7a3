"""Host-side geometry of the implicit-GEMM convolution (kernels/conv.cu): its compile-time
variants, weight packing, tile counts and the kernel's scalar arguments. Pure NumPy, testable
without a GPU."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tdn.activations import ACTIVATIONS
from tdn.layers.base import Shape
from tdn.layers.convolutional import Convolutional


@dataclass(frozen=True)
class ConvVariant:
    """One compile-time configuration of conv.cu: a block of warps_m x warps_n warps, each warp a
    32 x 16 sub-tile of the output (filters x pixels), stepping the GEMM depth by tile_k."""

    name: str
    warps_m: int
    warps_n: int
    tile_k: int
    purpose: str = field(compare=False)

    @property
    def tile_m(self) -> int:
        return 32 * self.warps_m

    @property
    def tile_n(self) -> int:
        return 16 * self.warps_n

    @property
    def threads(self) -> int:
        return 32 * self.warps_m * self.warps_n

    def defines(self) -> dict[str, int]:
        """conv.cu's -D definitions; it derives the tile sizes and thread count from them."""
        return {"WARPS_M": self.warps_m, "WARPS_N": self.warps_n, "TILE_K": self.tile_k}


# The variants, the one place they are set. Each is compiled separately (kernels.compile_options)
# and every one runs the interpreted suite; `tdn tune` times each on every conv shape of the zoo.
CONV_VARIANTS: dict[str, ConvVariant] = {v.name: v for v in (
    ConvVariant("m64n64k16", 2, 4, 16, "the general tile: 256 threads, each weight and input value "
                "staged once per 64 uses"),
    ConvVariant("m128n64k32", 4, 4, 32, "large maps with many filters: twice the reuse of each staged "
                "input value, half the passes over the input per filter (fewer bytes per FLOP)"),
    ConvVariant("m64n32k16", 2, 2, 16, "mid-sized maps: 128 threads, twice the blocks of m64n64 on the "
                "same layer"),
    ConvVariant("m32n16k16", 1, 1, 16, "small maps with many filters (7x7 or 14x14 at small batches): "
                "one warp per block, 8x the blocks of m64n64, so that the grid fills the GPU"),
)}
DEFAULT_VARIANT = CONV_VARIANTS["m64n64k16"]


# Streaming multiprocessors of the H100 SXM and of the H200 SXM (132 each, NVIDIA's H100 data sheet
# and Hopper architecture whitepaper): a grid of fewer blocks leaves SMs idle.
SM_COUNT = 132


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
    variant: ConvVariant = DEFAULT_VARIANT

    @classmethod
    def of(cls, layer: Convolutional, in_shape: Shape, out_shape: Shape, batch: int,
           variant: ConvVariant = DEFAULT_VARIANT) -> ConvGeometry:
        return cls(batch, *in_shape, *out_shape, layer.size, layer.stride, layer.padding,
                   layer.groups, layer.activation, variant)

    @property
    def k_group(self) -> int:
        """GEMM depth per group: kernel cells x input channels of a group, in conv.cu's order
        (ky, kx, channel), the channel fastest."""
        return self.channels // self.groups * self.size * self.size

    @property
    def m_group(self) -> int:
        return self.filters // self.groups

    @property
    def k_pad(self) -> int:
        return round_up(self.k_group, self.variant.tile_k)

    @property
    def m_pad(self) -> int:
        return round_up(self.m_group, self.variant.tile_m)

    @property
    def pixels(self) -> int:
        return self.batch * self.out_h * self.out_w

    @property
    def grid(self) -> tuple[int, int, int]:
        tile_n = self.variant.tile_n
        return (round_up(self.pixels, tile_n) // tile_n, self.m_pad // self.variant.tile_m, self.groups)

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
        """(filters, C/groups, size, size) -> (groups, k_pad, m_pad) float32, zero-padded, with k
        running over (ky, kx, channel), the channel fastest: the order conv.cu gathers the NHWC
        input in, so that a tile's consecutive k are consecutive channels in memory.

        k-major so that a tile's loads of consecutive filters are coalesced; padding to
        whole tiles lets the kernel load weights without bounds checks.
        """
        expected = (self.filters, self.channels // self.groups, self.size, self.size)
        if weights.shape != expected:
            raise ValueError(f"weights have shape {weights.shape}, expected {expected}")
        # (groups, m, c, ky, kx) -> (groups, ky, kx, c, m) -> (groups, k, m)
        grouped = weights.reshape(self.groups, self.m_group, *expected[1:]).transpose(0, 3, 4, 2, 1)
        packed = np.zeros((self.groups, self.k_pad, self.m_pad), np.float32)
        packed[:, :self.k_group, :self.m_group] = grouped.reshape(self.groups, self.k_group, self.m_group)
        return packed
