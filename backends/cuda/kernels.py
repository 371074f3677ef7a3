"""kernels/*.cu, the compile-time definitions each gets, and one checked launch wrapper per op.

Scalars go to the kernels as np.int32 / np.float32, the C types the kernels declare
(CuPy does not know a raw kernel's signature). The wrappers check dtype, shape and
C-contiguity of every array before launching, so a wrong buffer fails with a message
instead of corrupting memory. The checks only read .dtype, .shape and .flags, and the
device (device.py: CuPy, or the CPU interpreter) is reached only after them, so NumPy
arrays stand in for device arrays in CPU tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
from tdn.backends.cuda import pipelined
from tdn.backends.cuda.device import device
from tdn.backends.cuda.tiling import CONV_VARIANTS, DEFAULT_VARIANT, ConvGeometry, ConvVariant

from tdn.activations import ACTIVATIONS
from tdn.layers.shortcut import Shortcut

# The .cu sources and the entry points each defines.
KERNELS = {
    "conv.cu": ("conv_f32", "conv_tf32", "conv_f16"),
    "conv_pipelined.cu": ("conv_pipelined",),
    "maxpool.cu": ("maxpool",),
    "avgpool_softmax.cu": ("avgpool_softmax",),
    "softmax.cu": ("softmax",),
    "connected.cu": ("connected",),
    "shortcut.cu": ("shortcut",),
    "upsample.cu": ("upsample",),
    "batchnorm.cu": ("batchnorm",),
    "crop.cu": ("crop",),
}
# Given to NVRTC through cupy.RawModule (which adds the -arch option for the device), with each
# file's defines(); tests/test_cuda_compile.py compiles with the same options for sm_80 and sm_90.
COMPILE_OPTIONS = ("--std=c++17",)
# The conv.cu entry point computing each precision the backend offers, fp32 (the default) first.
CONV_ENTRY = {"fp32": "conv_f32", "tf32": "conv_tf32", "fp16": "conv_f16"}
REDUCE_THREADS = 256  # threads per block of the reductions and element-wise kernels
CONNECTED_WARPS = 8  # a connected block: one output per warp
CONNECTED_BATCH_TILE = 8  # images per connected block
CONNECTED_CHUNK = 256  # inputs staged in shared memory at a time
MAX_GRID_YZ = 65535
# The tile sizes of the kernels with one configuration; conv.cu's come from its variant
# (tiling.CONV_VARIANTS). Each .cu file gets its entries as -D definitions.
DEFINES: dict[str, dict[str, int]] = {name: {} for name in KERNELS}
DEFINES["connected.cu"] = {"WARPS": CONNECTED_WARPS, "BATCH_TILE": CONNECTED_BATCH_TILE, "CHUNK": CONNECTED_CHUNK}
# The .cu files compiled once per variant: each one's variants by name (each with defines()), and
# the default one's name.
_VARIANT_TABLES: dict[str, tuple[Mapping[str, ConvVariant | pipelined.PipelinedVariant], str]] = {
    "conv.cu": (CONV_VARIANTS, DEFAULT_VARIANT.name),
    "conv_pipelined.cu": (pipelined.VARIANTS, pipelined.DEFAULT_VARIANT.name)}
VARIANTS: dict[str, tuple[str, ...]] = {name: tuple(table) for name, (table, _) in _VARIANT_TABLES.items()}


def defines(name: str, variant: str = "") -> dict[str, int]:
    """The -D definitions of one .cu file (of one of its VARIANTS; "" is the default one)."""
    if name not in VARIANTS:
        if variant:
            raise ValueError(f"{name} has no variants (asked for {variant!r})")
        return DEFINES[name]
    table, default = _VARIANT_TABLES[name]
    chosen = variant or default
    if chosen not in table:
        raise ValueError(f"{name}: unknown variant {variant!r} (known: {', '.join(VARIANTS[name])})")
    return table[chosen].defines()


def compile_options(name: str, variant: str = "") -> tuple[str, ...]:
    """The NVRTC options of one .cu file (one variant of it): COMPILE_OPTIONS and its definitions."""
    return (*COMPILE_OPTIONS, *(f"-D{key}={value}" for key, value in defines(name, variant).items()))


def kernel_source(name: str) -> str:
    """A .cu file with its local #include "x.cuh" lines replaced by the header's text,
    recursively, each header once.

    Inlining keeps RawModule independent of include paths (package data may be zipped).
    """
    return "\n".join(text for text, _ in _expanded(name)) + "\n"


def source_line(name: str, line: int) -> str:
    """Where line `line` (from 1) of kernel_source(name) comes from: "file.cu:N"."""
    lines = _expanded(name)
    if not 1 <= line <= len(lines):
        return f"{name} line {line}"
    return lines[line - 1][1]


@cache
def _expanded(name: str) -> tuple[tuple[str, str], ...]:
    """kernel_source's lines, each with its origin "file:line"."""
    root = resources.files("tdn.kernels")
    included: set[str] = set()

    def expand(file: str) -> list[tuple[str, str]]:
        lines = []
        for number, line in enumerate(root.joinpath(file).read_text().splitlines(), 1):
            stripped = line.strip()
            if stripped == "#pragma once":
                continue
            if stripped.startswith("#include \"") and stripped.endswith(".cuh\""):
                header = stripped[len("#include \""):-1]
                if header not in included:
                    included.add(header)
                    lines += expand(header)
            else:
                lines.append((line, f"{file}:{number}"))
        return lines

    return tuple(expand(name))


def check(name: str, array, shape: tuple[int, ...], dtype=np.float32) -> None:
    if array.dtype != dtype:
        raise ValueError(f"{name}: expected {np.dtype(dtype)}, got {array.dtype}")
    if tuple(array.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(array.shape)}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")


def activation_id(name: str) -> int:
    """The id activations.cuh gives a Darknet activation."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r} (known: {', '.join(ACTIVATIONS)})")
    return ACTIVATIONS.index(name)


def elementwise_grid(count: int) -> int:
    """Blocks for a grid-stride loop over `count` values: enough to fill any current GPU,
    no more than the work."""
    return max(1, min(-(-count // REDUCE_THREADS), 65535))


def _launch_elementwise(file: str, entry: str, count: int, args: Sequence) -> None:
    device().launch(file, entry, (elementwise_grid(count),), (REDUCE_THREADS,), tuple(args))


def conv(x, packed, bias, y, geo: ConvGeometry, precision: str = "fp32") -> None:
    if precision not in CONV_ENTRY:
        raise ValueError(f"conv: unknown precision {precision!r} (known: {', '.join(CONV_ENTRY)})")
    check("conv input", x, (geo.batch, geo.channels, geo.height, geo.width))
    check("conv weights", packed, (geo.groups, geo.k_pad, geo.m_pad))
    check("conv bias", bias, (geo.filters,))
    check("conv output", y, (geo.batch, geo.filters, geo.out_h, geo.out_w))
    scalars = [np.int32(v) for v in geo.scalars()]
    device().launch("conv.cu", CONV_ENTRY[precision], geo.grid, (geo.variant.threads,),
                    (x, packed, bias, y, *scalars), geo.variant.name)


def conv_pipelined(x, packed, bias, y, geo: pipelined.PipelinedGeometry) -> None:
    """The fp16 tensor-core convolution of conv_pipelined.cu: x (N, H, W, C) float16, packed from
    geo.pack_weights (float16), bias (M,) float32, y (N, OH, OW, M) float16."""
    check("conv input", x, geo.x_shape, np.float16)
    check("conv weights", packed, geo.packed_shape, np.float16)
    check("conv bias", bias, (geo.conv.filters,))
    check("conv output", y, geo.y_shape, np.float16)
    scalars = [np.int32(v) for v in geo.scalars()]
    device().launch("conv_pipelined.cu", "conv_pipelined", geo.grid, (geo.variant.threads,),
                    (x, packed, bias, y, *scalars), geo.variant.name)


def maxpool(x, y, size: int, stride: int, offset: int) -> None:
    n, c, h, w = x.shape
    out_h, out_w = y.shape[2], y.shape[3]
    check("maxpool input", x, (n, c, h, w))
    check("maxpool output", y, (n, c, out_h, out_w))
    if min(size, stride) < 1:
        raise ValueError(f"maxpool: size {size} and stride {stride} must be positive")
    args = (x, y, *np.array([n * c, h, w, out_h, out_w, size, stride, offset], np.int32))
    _launch_elementwise("maxpool.cu", "maxpool", n * c * out_h * out_w, args)


def avgpool_softmax(x, pooled, probs, groups: int = 1, temperature: float = 1.0) -> None:
    """Global average pool; with probs not None, the softmax of the result in the same launch."""
    n, c, h, w = x.shape
    check("avgpool input", x, (n, c, h, w))
    check("avgpool output", pooled, (n, c, 1, 1))
    if probs is not None:
        check("softmax output", probs, (n, c, 1, 1))
        _check_groups(c, groups, temperature)
    target = pooled if probs is None else probs
    ints = np.array([c, h * w, probs is not None, groups], np.int32)
    args = (x, pooled, target, *ints, np.float32(temperature))
    device().launch("avgpool_softmax.cu", "avgpool_softmax", (n,), (REDUCE_THREADS,), args)


def softmax(x, y, groups: int, temperature: float) -> None:
    n = x.shape[0]
    total = int(np.prod(x.shape[1:]))
    check("softmax input", x, tuple(x.shape))
    check("softmax output", y, (n, total, 1, 1))
    _check_groups(total, groups, temperature)
    args = (x, y, np.int32(total), np.int32(groups), np.float32(temperature))
    device().launch("softmax.cu", "softmax", (n,), (REDUCE_THREADS,), args)


def _check_groups(total: int, groups: int, temperature: float) -> None:
    if groups < 1 or total % groups:
        raise ValueError(f"softmax: {groups} groups do not divide {total} values")
    if not temperature > 0:
        raise ValueError(f"softmax: temperature must be positive, got {temperature}")


def connected_grid(batch: int, outputs: int) -> tuple[int, int]:
    """(image tiles, output tiles): x walks the images so that blocks sharing rows of w run together."""
    grid = (-(-batch // CONNECTED_BATCH_TILE), -(-outputs // CONNECTED_WARPS))
    if grid[1] > MAX_GRID_YZ:
        raise ValueError(f"connected: {outputs} outputs exceed the kernel's limit of "
                         f"{MAX_GRID_YZ * CONNECTED_WARPS}")
    return grid


def connected(x, weights, bias, y, activation: str) -> None:
    """y = act(x @ weights.T + bias): weights (outputs, inputs) as Darknet stores them; x holds
    `inputs` values per image, y `outputs`, in any shape (batch, ...): a (batch, C, H, W) input is
    read flat in C order, as Darknet reads it."""
    if len(weights.shape) != 2:
        raise ValueError(f"connected weights: expected (outputs, inputs), got shape {tuple(weights.shape)}")
    outputs, inputs = weights.shape
    batch = x.shape[0]
    check("connected weights", weights, (outputs, inputs))
    check("connected bias", bias, (outputs,))
    _check_images("connected input", x, batch, inputs)
    _check_images("connected output", y, batch, outputs)
    grid = connected_grid(batch, outputs)
    ints = np.array([batch, inputs, outputs, activation_id(activation)], np.int32)
    device().launch("connected.cu", "connected", grid, (CONNECTED_WARPS * 32,), (x, weights, bias, y, *ints))


def _check_images(name: str, array, batch: int, count: int) -> None:
    """`batch` images of `count` values each, in any shape (batch, ...)."""
    check(name, array, tuple(array.shape))
    shape = tuple(array.shape)
    if len(shape) < 2 or shape[0] != batch or int(np.prod(shape[1:])) != count:
        raise ValueError(f"{name}: expected {batch} images of {count} values, got shape {shape}")


def shortcut(x, source, y, alpha: float = 1.0, beta: float = 1.0, activation: str = "linear") -> None:
    """y = act(x, with alpha * x + beta * source where source overlaps it); x and y (N, C, H, W),
    source (N, Cf, Hf, Wf), the `from` layer's output."""
    n, c, h, w = x.shape
    check("shortcut input", x, (n, c, h, w))
    if len(source.shape) != 4:
        raise ValueError(f"shortcut from: expected (N, C, H, W), got shape {tuple(source.shape)}")
    check("shortcut from", source, (n, *source.shape[1:]))
    check("shortcut output", y, (n, c, h, w))
    fc, fh, fw = (int(v) for v in source.shape[1:])
    min_c, min_h, min_w, stride, sample = Shortcut.overlap((c, h, w), (fc, fh, fw))
    ints = np.array([n, c, h, w, fc, fh, fw, stride, sample, min_c, min_h, min_w], np.int32)
    args = (x, source, y, *ints, np.float32(alpha), np.float32(beta), np.int32(activation_id(activation)))
    _launch_elementwise("shortcut.cu", "shortcut", n * c * h * w, args)


@dataclass(frozen=True)
class Copy2D:
    """One cudaMemcpy2D: `rows` rows of `width` bytes, from src+src_offset every src_pitch bytes
    to dst+dst_offset every dst_pitch bytes."""

    src_offset: int
    src_pitch: int
    dst_offset: int
    dst_pitch: int
    width: int
    rows: int


def route_copies(input_shapes: Sequence[Sequence[int]], out_shape: Sequence[int], groups: int = 1,
                 group_id: int = 0) -> list[Copy2D]:
    """The copies that build a [route] output: for each input (N, C_i, H, W) in order, its
    group_id-th of `groups` channel slices, placed after the previous inputs' slices
    (Darknet's forward_route_layer, with AlexeyAB's groups/group_id). All shapes NCHW float32."""
    if not 0 <= group_id < groups:
        raise ValueError(f"route: group_id {group_id} is not in 0..{groups - 1}")
    n, c, h, w = out_shape
    copies, channel = [], 0
    for index, (ni, ci, hi, wi) in enumerate(input_shapes):
        if (ni, hi, wi) != (n, h, w):
            raise ValueError(f"route: input {index} has shape {(ni, ci, hi, wi)}; "
                             f"expected {n} images of {h}x{w}")
        if ci % groups:
            raise ValueError(f"route: {groups} groups do not divide input {index}'s {ci} channels")
        part = ci // groups
        plane = 4 * h * w
        copies.append(Copy2D(group_id * part * plane, ci * plane, channel * plane, c * plane, part * plane, n))
        channel += part
    if channel != c:
        raise ValueError(f"route: the inputs give {channel} channels, the output has {c}")
    return copies


def route(inputs: Sequence, y, groups: int = 1, group_id: int = 0) -> None:
    """Concatenate the inputs' channel slices into y, by 2-D device-to-device copies on the current
    stream (no kernel: a strided copy is what cudaMemcpy2D does, and it is captured in CUDA graphs)."""
    for index, array in enumerate(inputs):
        if len(array.shape) != 4:
            raise ValueError(f"route input {index}: expected (N, C, H, W), got shape {tuple(array.shape)}")
        check(f"route input {index}", array, tuple(array.shape))
    if len(y.shape) != 4:
        raise ValueError(f"route output: expected (N, C, H, W), got shape {tuple(y.shape)}")
    check("route output", y, tuple(y.shape))
    copies = route_copies([a.shape for a in inputs], y.shape, groups, group_id)
    for array, copy in zip(inputs, copies, strict=True):
        device().copy2d(y, copy.dst_offset, copy.dst_pitch, array, copy.src_offset, copy.src_pitch,
                        copy.width, copy.rows)


def upsample(x, y, stride: int, scale: float = 1.0) -> None:
    """Darknet's [upsample]: each cell repeated stride x stride times, times scale."""
    n, c, h, w = x.shape
    if stride < 1:
        raise ValueError(f"upsample: stride must be positive, got {stride}")
    out_h, out_w = h * stride, w * stride
    check("upsample input", x, (n, c, h, w))
    check("upsample output", y, (n, c, out_h, out_w))
    ints = np.array([n * c, h, w, out_h, out_w, stride], np.int32)
    _launch_elementwise("upsample.cu", "upsample", n * c * out_h * out_w, (x, y, *ints, np.float32(scale)))


def batchnorm(x, scale, shift, y) -> None:
    """A standalone batch-norm layer, folded: y = x * scale[c] + shift[c]; x and y (N, C, H, W)."""
    n, c, h, w = x.shape
    check("batchnorm input", x, (n, c, h, w))
    check("batchnorm scale", scale, (c,))
    check("batchnorm shift", shift, (c,))
    check("batchnorm output", y, (n, c, h, w))
    ints = np.array([n, c, h * w], np.int32)
    _launch_elementwise("batchnorm.cu", "batchnorm", n * c * h * w, (x, scale, shift, y, *ints))


def crop(x, y, scale: float, shift: float) -> None:
    """Darknet's [crop] at inference: the centred y-sized window of x, times scale plus shift
    (the layer's Crop.scale and Crop.shift)."""
    n, c, h, w = x.shape
    out_h, out_w = y.shape[2], y.shape[3]
    check("crop input", x, (n, c, h, w))
    check("crop output", y, (n, c, out_h, out_w))
    if out_h > h or out_w > w:
        raise ValueError(f"crop: a {out_h}x{out_w} window does not fit in a {h}x{w} input")
    ints = np.array([n * c, h, w, out_h, out_w], np.int32)
    _launch_elementwise("crop.cu", "crop", n * c * out_h * out_w, (x, y, *ints, np.float32(scale), np.float32(shift)))
