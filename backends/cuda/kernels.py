"""Loading kernels/*.cu with cupy.RawModule, and one checked launch wrapper per op.

Scalars go to the kernels as np.int32 / np.float32, the C types the kernels declare
(CuPy does not know a raw kernel's signature). The wrappers check dtype, shape and
C-contiguity of every array before launching, so a
wrong buffer fails with a message instead of corrupting memory. The checks only read
.dtype, .shape and .flags, so NumPy arrays stand in for device arrays in CPU tests.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np
from tdn.backends.cuda.tiling import THREADS, ConvGeometry

# The .cu sources and the entry points each defines.
KERNELS = {
    "conv.cu": ("conv_f32", "conv_tf32", "conv_f16"),
    "maxpool.cu": ("maxpool",),
    "avgpool_softmax.cu": ("avgpool_softmax",),
    "softmax.cu": ("softmax",),
}
HEADERS = ("activations.cuh", "softmax.cuh")
# Given to NVRTC through cupy.RawModule (which adds the -arch option for the device);
# tests/test_cuda_compile.py compiles with the same options for sm_80 and sm_90.
COMPILE_OPTIONS = ("--std=c++17",)
CONV_ENTRY = {"float32": "conv_f32", "tf32": "conv_tf32", "fp16": "conv_f16"}
REDUCE_THREADS = 256


def kernel_source(name: str) -> str:
    """A .cu file with its local #include "x.cuh" lines replaced by the header's text.

    Inlining keeps RawModule independent of include paths (package data may be zipped).
    """
    root = resources.files("tdn.kernels")
    lines = []
    for line in root.joinpath(name).read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#include \"") and stripped.endswith(".cuh\""):
            header = stripped[len("#include \""):-1]
            lines.append(root.joinpath(header).read_text().replace("#pragma once", ""))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


@cache
def module(name: str):
    import cupy

    return cupy.RawModule(code=kernel_source(name), options=COMPILE_OPTIONS)


def function(file: str, entry: str):
    return module(file).get_function(entry)


def check(name: str, array, shape: tuple[int, ...]) -> None:
    if array.dtype != np.float32:
        raise ValueError(f"{name}: expected float32, got {array.dtype}")
    if tuple(array.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(array.shape)}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")


def conv(x, packed, bias, y, geo: ConvGeometry, precision: str = "float32") -> None:
    if precision not in CONV_ENTRY:
        raise ValueError(f"conv: unknown precision {precision!r} (known: {', '.join(CONV_ENTRY)})")
    check("conv input", x, (geo.batch, geo.channels, geo.height, geo.width))
    check("conv weights", packed, (geo.groups, geo.k_pad, geo.m_pad))
    check("conv bias", bias, (geo.filters,))
    check("conv output", y, (geo.batch, geo.filters, geo.out_h, geo.out_w))
    scalars = [np.int32(v) for v in geo.scalars()]
    function("conv.cu", CONV_ENTRY[precision])(geo.grid, (THREADS,), (x, packed, bias, y, *scalars))


def maxpool_grid(outputs: int) -> int:
    # Grid-stride loop: enough blocks to fill any current GPU, no more than the work.
    return max(1, min(-(-outputs // REDUCE_THREADS), 65535))


def maxpool(x, y, size: int, stride: int, offset: int) -> None:
    n, c, h, w = x.shape
    out_h, out_w = y.shape[2], y.shape[3]
    check("maxpool input", x, (n, c, h, w))
    check("maxpool output", y, (n, c, out_h, out_w))
    if min(size, stride) < 1:
        raise ValueError(f"maxpool: size {size} and stride {stride} must be positive")
    args = (x, y, *np.array([n * c, h, w, out_h, out_w, size, stride, offset], np.int32))
    function("maxpool.cu", "maxpool")((maxpool_grid(n * c * out_h * out_w),), (REDUCE_THREADS,), args)


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
    function("avgpool_softmax.cu", "avgpool_softmax")((n,), (REDUCE_THREADS,), args)


def softmax(x, y, groups: int, temperature: float) -> None:
    n = x.shape[0]
    total = int(np.prod(x.shape[1:]))
    check("softmax input", x, tuple(x.shape))
    check("softmax output", y, (n, total, 1, 1))
    _check_groups(total, groups, temperature)
    args = (x, y, np.int32(total), np.int32(groups), np.float32(temperature))
    function("softmax.cu", "softmax")((n,), (REDUCE_THREADS,), args)


def _check_groups(total: int, groups: int, temperature: float) -> None:
    if groups < 1 or total % groups:
        raise ValueError(f"softmax: {groups} groups do not divide {total} values")
    if not temperature > 0:
        raise ValueError(f"softmax: temperature must be positive, got {temperature}")
