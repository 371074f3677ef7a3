"""The CUDA backends: `cuda` (float32), `cuda-tf32` and `cuda-fp16` (tensor-core convolutions).

CuPy is imported only here, lazily, so tdn imports and lists backends without it.
"""

from __future__ import annotations

from collections.abc import Sequence

from tdn.backends.cuda.plan import LAYER_KINDS, build_plan

from tdn.backend import Backend, LayerParams, Program
from tdn.graph import Graph

PRECISIONS = {
    # precision: (backend name, description)
    "float32": ("cuda", "own CUDA kernels via CuPy, float32, CUDA graphs"),
    "tf32": ("cuda-tf32", "own CUDA kernels via CuPy, tf32 tensor-core convolutions, float32 sums"),
    "fp16": ("cuda-fp16", "own CUDA kernels via CuPy, fp16 tensor-core convolutions, float32 sums"),
}


def cuda_unavailable_reason() -> str | None:
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install 'tdn[cuda]')"
    except Exception as error:  # a broken CuPy install raises other errors on import
        return f"CuPy cannot be imported: {_one_line(error)}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:
        return f"no CUDA device: {_one_line(error)}"
    if count < 1:
        return "no CUDA device: the driver reports 0 devices"
    major = int(cupy.cuda.Device(0).compute_capability[:-1] or 0)
    if major < 8:
        return f"the GPU has compute capability {cupy.cuda.Device(0).compute_capability}; needs 8.0 or later"
    return None


def _one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class CudaBackend(Backend):
    """One class for the three precisions; `precision` selects the convolution kernel."""

    layer_kinds = LAYER_KINDS
    priority = 20  # above numpy's 10: "auto" picks the GPU when there is one
    precision = "float32"

    def __init__(self, precision: str = "float32"):
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}")
        self.precision = precision
        self.name, self.description = PRECISIONS[precision]
        if precision != "float32":
            self.priority = 0  # reduced precision only when asked for by name

    def unavailable_reason(self) -> str | None:
        return cuda_unavailable_reason()

    def prepare(self, graph: Graph, params: Sequence[LayerParams], batch: int) -> Program:
        from tdn.backends.cuda.program import CudaProgram

        return CudaProgram(build_plan(graph, batch), params, self.precision)
