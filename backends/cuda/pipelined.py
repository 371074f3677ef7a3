"""Host side of the pipelined fp16 tensor-core convolution (kernels/conv_pipelined.cu): its
compile-time variants, when it applies, weight packing, the grid and the kernel's scalars.
Pure NumPy, testable without a GPU.

A PipelinedGeometry wraps tiling.ConvGeometry (the layer at one batch size; its variant, a
conv.cu tiling, is not used here) with one of this kernel's variants."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tdn.backends.cuda.tiling import SM_COUNT, ConvGeometry, round_up

from tdn.activations import ACTIVATIONS

# Channels per group must be a multiple of this: 8 halves, one 16-byte cp.async per 8 k values.
CHANNEL_MULTIPLE = 8
SHARED_ROW_PADDING = 8  # halves added to each shared tile row (conv_pipelined.cu's ROW)


@dataclass(frozen=True)
class PipelinedVariant:
    """One compile-time configuration of conv_pipelined.cu: warps_p x warps_f warps of 32 pixels x
    32 filters each, k slices of tile_k, `stages` slices in flight."""

    name: str
    warps_p: int
    warps_f: int
    tile_k: int
    stages: int
    purpose: str = field(compare=False)

    @property
    def tile_p(self) -> int:
        return 32 * self.warps_p

    @property
    def tile_f(self) -> int:
        return 32 * self.warps_f

    @property
    def threads(self) -> int:
        return 32 * self.warps_p * self.warps_f

    @property
    def shared_bytes(self) -> int:
        """Static shared memory per block: both operands' tiles, every stage, fp16, padded rows."""
        return self.stages * (self.tile_p + self.tile_f) * (self.tile_k + SHARED_ROW_PADDING) * 2

    def defines(self) -> dict[str, int]:
        return {"WARPS_P": self.warps_p, "WARPS_F": self.warps_f, "TILE_K": self.tile_k, "STAGES": self.stages}


# The variants, the one place they are set; each names the row of benchmarks/results/perf_model.txt
# (tdn/perf_model.py) it is for. All stay within 48 KiB of static shared memory.
VARIANTS: dict[str, PipelinedVariant] = {v.name: v for v in (
    PipelinedVariant("p64f64k32s4", 2, 2, 32, 4, "the general tile (128 threads, 40 KiB): four slices in flight "
                     "hide global latency on mid-sized layers"),
    PipelinedVariant("p128f64k32s3", 4, 2, 32, 3, "large compute-bound layers (the batch-64 and -256 rows, "
                     "'convolutional compute' dominant): 256 threads, each staged weight used by 128 pixels"),
    PipelinedVariant("p64f128k32s3", 2, 4, 32, 3, "many filters over mid-sized maps: each staged input value "
                     "used by 128 filters, half the input traffic of p64f64 per filter"),
    PipelinedVariant("p32f32k64s4", 1, 1, 64, 4, "small maps with many filters at batch 1 (7x7 and 14x14, the "
                     "batch-1 rows): one warp per block for 4x the blocks of p64f64, deep k slices for fewer "
                     "barriers per output"),
)}
DEFAULT_VARIANT = VARIANTS["p64f64k32s4"]


def unsupported_reason(geo: ConvGeometry) -> str | None:
    """Why conv_pipelined.cu cannot compute this convolution (conv.cu then does), or None."""
    group_channels = geo.channels // geo.groups
    if group_channels % CHANNEL_MULTIPLE:
        return (f"{group_channels} channels per group: conv_pipelined.cu copies {CHANNEL_MULTIPLE} channels "
                f"(16 bytes) at a time")
    return None


def rule_choice(conv: ConvGeometry) -> PipelinedVariant:
    """The variant without a measurement, by conv.cu's rule (tuning.conv_rule_choice): the useful share
    of the grid (outputs, not padding of partial tiles) times the share of the GPU's SMs it can
    occupy; ties go to the larger tile. A 7x7 map with 1024 filters at batch 1 gets p32f32k64s4."""
    def score(variant: PipelinedVariant) -> tuple[float, int]:
        geo = PipelinedGeometry(conv, variant)
        useful = conv.m_group * conv.pixels / (geo.m_pad * geo.grid[0] * variant.tile_p)
        blocks = geo.grid[0] * geo.grid[1] * geo.grid[2]
        return round(useful * min(1.0, blocks / SM_COUNT), 6), variant.tile_p * variant.tile_f

    return max(VARIANTS.values(), key=score)


@dataclass(frozen=True)
class PipelinedGeometry:
    """One convolution at one batch size in the terms conv_pipelined.cu uses."""

    conv: ConvGeometry
    variant: PipelinedVariant = DEFAULT_VARIANT

    def __post_init__(self):
        if (reason := unsupported_reason(self.conv)) is not None:
            raise ValueError(f"conv_pipelined: {reason}")

    @property
    def k_pad(self) -> int:
        return round_up(self.conv.k_group, self.variant.tile_k)

    @property
    def m_pad(self) -> int:
        return round_up(self.conv.m_group, self.variant.tile_f)

    @property
    def grid(self) -> tuple[int, int, int]:
        """(pixel tiles, filter tiles, groups)."""
        return (round_up(self.conv.pixels, self.variant.tile_p) // self.variant.tile_p,
                self.m_pad // self.variant.tile_f, self.conv.groups)

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        c = self.conv
        return (c.batch, c.height, c.width, c.channels)

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        c = self.conv
        return (c.batch, c.out_h, c.out_w, c.filters)

    @property
    def packed_shape(self) -> tuple[int, int, int]:
        return (self.conv.groups, self.m_pad, self.k_pad)

    def scalars(self) -> tuple[int, ...]:
        """The int arguments after (x, w, bias, y), in conv_pipelined's parameter order."""
        c = self.conv
        if c.pixels >= 2**31:  # pixel indices are 32-bit; element offsets 64-bit
            raise ValueError(f"convolution too large for 32-bit pixel indices: {c}")
        return (c.channels, c.height, c.width, c.filters, c.out_h, c.out_w, c.size, c.stride, c.padding,
                c.groups, c.k_group, c.m_group, self.k_pad, self.m_pad, c.pixels, ACTIVATIONS.index(c.activation))

    def pack_weights(self, weights: np.ndarray) -> np.ndarray:
        """(filters, C/groups, size, size) -> (groups, m_pad, k_pad) float16, zero-padded, k in
        (ky, kx, c) order: each filter's k values contiguous, in the order of an NHWC input window."""
        c = self.conv
        expected = (c.filters, c.channels // c.groups, c.size, c.size)
        if weights.shape != expected:
            raise ValueError(f"weights have shape {weights.shape}, expected {expected}")
        per_filter = weights.transpose(0, 2, 3, 1).reshape(c.groups, c.m_group, c.k_group)
        packed = np.zeros(self.packed_shape, np.float16)
        packed[:, :c.m_group, :c.k_group] = per_filter
        return packed
