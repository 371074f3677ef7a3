"""How the CUDA backend stores activations on the device, the one place that says so.

Every activation buffer is NHWC (channels fastest), so that a convolution's GEMM depth, which runs
over (ky, kx, channel), reads consecutive channels of a cell from consecutive addresses. Buffers
hold float32 in fp32 and tf32 networks and float16 in fp16 ones (half the bytes each layer moves);
arithmetic is float32 in every kernel. Conv and connected weights are stored as the activations
(float16 in fp16 networks); biases and batch-norm scales stay float32.

The backend contract speaks float32 NCHW (tdn.backend.Program): conversions happen at the edges,
on the device for run's input and output (kernels/convert.cu), on the host for run_layers'
downloads. Darknet's [connected] and [softmax] read their input flat in CHW order: the connected
weights' input axis is permuted once at upload (tdn.layers.connected.weights_in_hwc_order), and
softmax.cuh indexes its groups in CHW order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# The storage type of activations at each precision.
STORAGE: dict[str, type[np.floating]] = {"fp32": np.float32, "tf32": np.float32, "fp16": np.float16}
# The suffix of the kernel entry point reading and writing activations of each storage type.
ENTRY_SUFFIX = {np.dtype(np.float32): "_f32", np.dtype(np.float16): "_f16"}


def nhwc(batch: int, chw: Sequence[int]) -> tuple[int, int, int, int]:
    """The device shape of `batch` activations of a layer's (C, H, W)."""
    c, h, w = chw
    return batch, h, w, c


def to_nhwc(array: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W, C), C-contiguous, same dtype."""
    return np.ascontiguousarray(array.transpose(0, 2, 3, 1))


def to_nchw(array: np.ndarray) -> np.ndarray:
    """(N, H, W, C) of any storage type -> (N, C, H, W) float32, C-contiguous."""
    return np.ascontiguousarray(array.transpose(0, 3, 1, 2), np.float32)


def entry(base: str, dtype: np.dtype) -> str:
    """The kernel entry point `base` computes for activations stored as `dtype`."""
    suffix = ENTRY_SUFFIX.get(np.dtype(dtype))
    if suffix is None:
        known = ", ".join(str(d) for d in ENTRY_SUFFIX)
        raise ValueError(f"{base}: activations are stored as {known}, not {np.dtype(dtype)}")
    return base + suffix
