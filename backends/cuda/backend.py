"""The CUDA backend: `cuda`, float32 by default, tf32 or fp16 tensor-core convolutions on request.

CuPy is imported only here, lazily, so tdn imports and lists backends without it.
"""

from __future__ import annotations

from collections.abc import Sequence

from tdn.backends.cuda.kernels import CONV_ENTRY
from tdn.backends.cuda.plan import LAYER_KINDS, build_plan

from tdn.backend import Backend, LayerParams, Program
from tdn.graph import Graph


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
    name = "cuda"
    description = ("own CUDA kernels via CuPy, CUDA graphs; fp32, or tf32/fp16 tensor-core "
                   "convolutions with float32 sums")
    layer_kinds = LAYER_KINDS
    precisions = tuple(CONV_ENTRY)  # fp32 first: the default
    priority = 20  # above numpy's 10: "auto" picks the GPU when there is one

    def unavailable_reason(self) -> str | None:
        return cuda_unavailable_reason()

    def prepare(self, graph: Graph, params: Sequence[LayerParams], batch: int, precision: str) -> Program:
        from tdn.backends.cuda.program import CudaProgram

        return CudaProgram(build_plan(graph, batch), params, precision)
