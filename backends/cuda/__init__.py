"""The CUDA backend plugin: `cuda`, `cuda-tf32` and `cuda-fp16` (see backend.py)."""

from functools import partial

from tdn.backends.cuda.backend import PRECISIONS, CudaBackend

from tdn.hookspecs import hookimpl


@hookimpl
def tdn_register_backends(register):
    for precision, (name, _) in PRECISIONS.items():
        register(name, partial(CudaBackend, precision))
