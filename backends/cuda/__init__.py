"""The CUDA backend plugin: `cuda`, with precisions fp32, tf32 and fp16 (see backend.py)."""

from tdn.backends.cuda.backend import CudaBackend

from tdn.hookspecs import hookimpl


@hookimpl
def tdn_register_backends(register):
    register("cuda", CudaBackend)
