"""The CUDA backend: `cuda`, float32 by default, tf32 or fp16 tensor-core convolutions on request.

CuPy is imported only here and in device.py, lazily, so tdn imports and lists backends without it.
With TDN_CUDA_INTERPRET=1 the same kernels run on the CPU instead (interpreter/), for testing.
"""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Sequence

from tdn.backends.cuda.device import interpret_mode
from tdn.backends.cuda.kernels import CONV_ENTRY
from tdn.backends.cuda.plan import LAYER_KINDS, build_plan

from tdn.backend import Backend, LayerParams, Program
from tdn.graph import Graph

INTERPRETED = "interpreted on the CPU: for testing, slow"


def cuda_unavailable_reason() -> str | None:
    if interpret_mode() is not None:
        return interpreter_unavailable_reason()
    return gpu_unavailable_reason()


def gpu_unavailable_reason() -> str | None:
    """None where CuPy sees a GPU of compute capability 8.0 or later, else why not."""
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


def interpreter_unavailable_reason() -> str | None:
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"TDN_CUDA_INTERPRET: the interpreter runs on x86-64 machines, not {platform.machine()}"
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        return f"TDN_CUDA_INTERPRET: the C++ compiler {compiler!r} is not installed (set CXX)"
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
    uploads_pixels = True  # CudaProgram.run_pixels: uint8 bytes up, normalised on the device

    def __init__(self):
        if interpret_mode() is not None:
            self.description = f"own CUDA kernels, {INTERPRETED}"
            self.priority = -1  # never picked by "auto"

    def unavailable_reason(self) -> str | None:
        return cuda_unavailable_reason()

    def prepare(self, graph: Graph, params: Sequence[LayerParams], batch: int, precision: str) -> Program:
        from tdn.backends.cuda import tuning
        from tdn.backends.cuda.device import device
        from tdn.backends.cuda.program import CudaProgram

        choose = tuning.chooser(tuning.best_variants(device().name()), precision)
        return CudaProgram(build_plan(graph, batch, choose, precision), params, precision)
