"""kernels/*.cu, the compile-time definitions each gets, and one checked launch wrapper per op.

Scalars go to the kernels as np.int32 / np.float32, the C types the kernels declare
(CuPy does not know a raw kernel's signature). Activations are NHWC, float32 or float16
(layout.py); each wrapper launches the entry point of its arrays' storage type. The wrappers
check dtype, shape and C-contiguity of every array before launching, so a wrong buffer fails with a message
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
from tdn.backends.cuda import layout, pipelined
from tdn.backends.cuda.device import device
from tdn.backends.cuda.tiling import CONV_VARIANTS, DEFAULT_VARIANT, ConvGeometry, ConvVariant

from tdn.activations import ACTIVATIONS
from tdn.layers.shortcut import Shortcut

# The .cu sources and the entry points each defines: one per activation storage type (layout.py:
# _f32 and _f16), conv.cu one per precision (conv_f32 and conv_tf32 store float32, conv_f16 fp16).
KERNELS = {
    "conv.cu": ("conv_f32", "conv_tf32", "conv_f16"),
    "conv_pipelined.cu": ("conv_pipelined",),
    "maxpool.cu": ("maxpool_f32", "maxpool_f16"),
    "avgpool_softmax.cu": ("avgpool_softmax_f32", "avgpool_softmax_f16"),
    "softmax.cu": ("softmax_f32", "softmax_f16"),
    "connected.cu": ("connected_f32", "connected_f16"),
    "shortcut.cu": ("shortcut_f32", "shortcut_f16"),
    "upsample.cu": ("upsample_f32", "upsample_f16"),
    "batchnorm.cu": ("batchnorm_f32", "batchnorm_f16"),
    "crop.cu": ("crop_f32", "crop_f16"),
    "convert.cu": ("to_nhwc_f32", "to_nhwc_f16", "to_nchw_f32", "to_nchw_f16", "pixels_f32", "pixels_f16"),
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


def _nhwc(name: str, array) -> tuple[int, int, int, int]:
    """The (N, H, W, C) of an activation array."""
    if len(array.shape) != 4:
        raise ValueError(f"{name}: expected (N, H, W, C), got shape {tuple(array.shape)}")
    n, h, w, c = (int(v) for v in array.shape)
    return n, h, w, c


def _entry(base: str, x) -> str:
    """The entry point of `base` for x's storage type (float32 or float16)."""
    return layout.entry(base, x.dtype)


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
    """x (N, H, W, C), y (N, OH, OW, M) and the weights packed by geo.pack_weights, all stored as
    the precision stores activations (layout.STORAGE); bias (M,) float32."""
    if precision not in CONV_ENTRY:
        raise ValueError(f"conv: unknown precision {precision!r} (known: {', '.join(CONV_ENTRY)})")
    storage = layout.STORAGE[precision]
    check("conv input", x, (geo.batch, geo.height, geo.width, geo.channels), storage)
    check("conv weights", packed, (geo.groups, geo.k_pad, geo.m_pad), storage)
    check("conv bias", bias, (geo.filters,))
    check("conv output", y, (geo.batch, geo.out_h, geo.out_w, geo.filters), storage)
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
    n, h, w, c = _nhwc("maxpool input", x)
    out_h, out_w = _nhwc("maxpool output", y)[1:3]
    check("maxpool input", x, (n, h, w, c), x.dtype)
    check("maxpool output", y, (n, out_h, out_w, c), x.dtype)
    if min(size, stride) < 1:
        raise ValueError(f"maxpool: size {size} and stride {stride} must be positive")
    args = (x, y, *np.array([n, c, h, w, out_h, out_w, size, stride, offset], np.int32))
    _launch_elementwise("maxpool.cu", _entry("maxpool", x), n * c * out_h * out_w, args)


def avgpool_softmax(x, pooled, probs, groups: int = 1, temperature: float = 1.0) -> None:
    """Global average pool of x (N, H, W, C) into pooled (N, 1, 1, C); with probs not None, the
    softmax of the result in the same launch."""
    n, h, w, c = _nhwc("avgpool input", x)
    check("avgpool input", x, (n, h, w, c), x.dtype)
    check("avgpool output", pooled, (n, 1, 1, c), x.dtype)
    if probs is not None:
        check("softmax output", probs, (n, 1, 1, c), x.dtype)
        _check_groups(c, groups, temperature)
    target = pooled if probs is None else probs
    ints = np.array([c, h * w, probs is not None, groups], np.int32)
    args = (x, pooled, target, *ints, np.float32(temperature))
    device().launch("avgpool_softmax.cu", _entry("avgpool_softmax", x), (n,), (REDUCE_THREADS,), args)


def softmax(x, y, groups: int, temperature: float) -> None:
    """Darknet's softmax of each image's values in CHW order: x (N, H, W, C), y (N, 1, 1, C*H*W)."""
    n, h, w, c = _nhwc("softmax input", x)
    total = c * h * w
    check("softmax input", x, (n, h, w, c), x.dtype)
    check("softmax output", y, (n, 1, 1, total), x.dtype)
    _check_groups(total, groups, temperature)
    args = (x, y, np.int32(c), np.int32(h * w), np.int32(groups), np.float32(temperature))
    device().launch("softmax.cu", _entry("softmax", x), (n,), (REDUCE_THREADS,), args)


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
    """y = act(x @ weights.T + bias): weights (outputs, inputs); x holds `inputs` values per image,
    y `outputs`, in any shape (batch, ...); x, y and weights of one storage type, bias float32. An
    NHWC input is read flat in HWC order, so weights in Darknet's CHW order go through
    tdn.layers.connected.weights_in_hwc_order first."""
    if len(weights.shape) != 2:
        raise ValueError(f"connected weights: expected (outputs, inputs), got shape {tuple(weights.shape)}")
    outputs, inputs = weights.shape
    batch = x.shape[0]
    check("connected weights", weights, (outputs, inputs), x.dtype)
    check("connected bias", bias, (outputs,))
    _check_images("connected input", x, batch, inputs, x.dtype)
    _check_images("connected output", y, batch, outputs, x.dtype)
    grid = connected_grid(batch, outputs)
    ints = np.array([batch, inputs, outputs, activation_id(activation)], np.int32)
    device().launch("connected.cu", _entry("connected", x), grid, (CONNECTED_WARPS * 32,),
                    (x, weights, bias, y, *ints))


def _check_images(name: str, array, batch: int, count: int, dtype) -> None:
    """`batch` images of `count` values each, in any shape (batch, ...)."""
    check(name, array, tuple(array.shape), dtype)
    shape = tuple(array.shape)
    if len(shape) < 2 or shape[0] != batch or int(np.prod(shape[1:])) != count:
        raise ValueError(f"{name}: expected {batch} images of {count} values, got shape {shape}")


def shortcut(x, source, y, alpha: float = 1.0, beta: float = 1.0, activation: str = "linear") -> None:
    """y = act(x, with alpha * x + beta * source where source overlaps it); x and y (N, H, W, C),
    source (N, Hf, Wf, Cf), the `from` layer's output, sampled between the shapes as Darknet does."""
    n, h, w, c = _nhwc("shortcut input", x)
    check("shortcut input", x, (n, h, w, c), x.dtype)
    _, fh, fw, fc = _nhwc("shortcut from", source)
    check("shortcut from", source, (n, fh, fw, fc), x.dtype)
    check("shortcut output", y, (n, h, w, c), x.dtype)
    min_c, min_h, min_w, stride, sample = Shortcut.overlap((c, h, w), (fc, fh, fw))
    ints = np.array([n, c, h, w, fc, fh, fw, stride, sample, min_c, min_h, min_w], np.int32)
    args = (x, source, y, *ints, np.float32(alpha), np.float32(beta), np.int32(activation_id(activation)))
    _launch_elementwise("shortcut.cu", _entry("shortcut", x), n * c * h * w, args)


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
                 group_id: int = 0, itemsize: int = 4) -> list[Copy2D]:
    """The copies that build a [route] output: for each input (N, H, W, C_i) in order, its
    group_id-th of `groups` channel slices, placed after the previous inputs' slices
    (Darknet's forward_route_layer, with AlexeyAB's groups/group_id). All shapes NHWC, values of
    `itemsize` bytes: each copy moves one slice of channels per cell, a row per cell."""
    if not 0 <= group_id < groups:
        raise ValueError(f"route: group_id {group_id} is not in 0..{groups - 1}")
    n, h, w, c = out_shape
    copies, channel = [], 0
    for index, (ni, hi, wi, ci) in enumerate(input_shapes):
        if (ni, hi, wi) != (n, h, w):
            raise ValueError(f"route: input {index} has shape {(ni, hi, wi, ci)}; "
                             f"expected {n} images of {h}x{w}")
        if ci % groups:
            raise ValueError(f"route: {groups} groups do not divide input {index}'s {ci} channels")
        part = ci // groups
        copies.append(Copy2D(group_id * part * itemsize, ci * itemsize, channel * itemsize, c * itemsize,
                             part * itemsize, n * h * w))
        channel += part
    if channel != c:
        raise ValueError(f"route: the inputs give {channel} channels, the output has {c}")
    return copies


def route(inputs: Sequence, y, groups: int = 1, group_id: int = 0) -> None:
    """Concatenate the inputs' channel slices into y (all NHWC, one storage type), by 2-D
    device-to-device copies on the current stream (no kernel: a strided copy is what cudaMemcpy2D
    does, and it is captured in CUDA graphs)."""
    _nhwc("route output", y)
    check("route output", y, tuple(y.shape), y.dtype)
    for index, array in enumerate(inputs):
        _nhwc(f"route input {index}", array)
        check(f"route input {index}", array, tuple(array.shape), y.dtype)
    copies = route_copies([a.shape for a in inputs], y.shape, groups, group_id, y.dtype.itemsize)
    for array, copy in zip(inputs, copies, strict=True):
        device().copy2d(y, copy.dst_offset, copy.dst_pitch, array, copy.src_offset, copy.src_pitch,
                        copy.width, copy.rows)


def upsample(x, y, stride: int, scale: float = 1.0) -> None:
    """Darknet's [upsample]: each cell repeated stride x stride times, times scale; x and y NHWC."""
    n, h, w, c = _nhwc("upsample input", x)
    if stride < 1:
        raise ValueError(f"upsample: stride must be positive, got {stride}")
    out_h, out_w = h * stride, w * stride
    check("upsample input", x, (n, h, w, c), x.dtype)
    check("upsample output", y, (n, out_h, out_w, c), x.dtype)
    ints = np.array([n, c, h, w, stride], np.int32)
    _launch_elementwise("upsample.cu", _entry("upsample", x), n * c * out_h * out_w,
                        (x, y, *ints, np.float32(scale)))


def batchnorm(x, scale, shift, y) -> None:
    """A standalone batch-norm layer, folded: y = x * scale[c] + shift[c]; x and y (N, H, W, C)."""
    n, h, w, c = _nhwc("batchnorm input", x)
    check("batchnorm input", x, (n, h, w, c), x.dtype)
    check("batchnorm scale", scale, (c,))
    check("batchnorm shift", shift, (c,))
    check("batchnorm output", y, (n, h, w, c), x.dtype)
    ints = np.array([n * h * w, c], np.int32)
    _launch_elementwise("batchnorm.cu", _entry("batchnorm", x), n * c * h * w, (x, scale, shift, y, *ints))


def crop(x, y, scale: float, shift: float) -> None:
    """Darknet's [crop] at inference: the centred y-sized window of x, times scale plus shift
    (the layer's Crop.scale and Crop.shift); x and y NHWC."""
    n, h, w, c = _nhwc("crop input", x)
    out_h, out_w = _nhwc("crop output", y)[1:3]
    check("crop input", x, (n, h, w, c), x.dtype)
    check("crop output", y, (n, out_h, out_w, c), x.dtype)
    if out_h > h or out_w > w:
        raise ValueError(f"crop: a {out_h}x{out_w} window does not fit in a {h}x{w} input")
    ints = np.array([n, c, h, w, out_h, out_w], np.int32)
    _launch_elementwise("crop.cu", _entry("crop", x), n * c * out_h * out_w,
                        (x, y, *ints, np.float32(scale), np.float32(shift)))


def to_nhwc(x, y) -> None:
    """The contract's float32 input x (N, C, H, W) into the activation buffer y (N, H, W, C)."""
    n, h, w, c = _nhwc("to_nhwc output", y)
    check("to_nhwc input", x, (n, c, h, w))
    check("to_nhwc output", y, (n, h, w, c), y.dtype)
    _launch_elementwise("convert.cu", _entry("to_nhwc", y), n * c * h * w, (x, y, *np.array([n, c, h * w], np.int32)))


def to_nchw(x, y) -> None:
    """The activation buffer x (N, H, W, C) into the contract's float32 y (N, C, H, W)."""
    n, h, w, c = _nhwc("to_nchw input", x)
    check("to_nchw input", x, (n, h, w, c), x.dtype)
    check("to_nchw output", y, (n, c, h, w))
    _launch_elementwise("convert.cu", _entry("to_nchw", x), n * c * h * w, (x, y, *np.array([n, c, h * w], np.int32)))


def pixels(x, table, y) -> None:
    """Decoded pixels x (N, H, W, C) uint8 into the activation buffer y (N, H, W, C): y = table[x],
    with table (256,) float32 tdn.image.BYTE_TO_FLOAT, so that y is what tdn.image.to_float gives."""
    n, h, w, c = _nhwc("pixels output", y)
    check("pixels input", x, (n, h, w, c), np.uint8)
    check("pixels table", table, (256,))
    check("pixels output", y, (n, h, w, c), y.dtype)
    _launch_elementwise("convert.cu", _entry("pixels", y), n * c * h * w,
                        (x, table, y, *np.array([n * h * w, c], np.int32)))
