"""tdn-torch: the `torch` (CPU) and `torch-cuda` backends, registered through tdn's plugin hook.

This module is the plugin (the `tdn` entry point names it); it imports no torch, so that
listing backends stays cheap. torch is imported when a backend is asked whether it can run.
"""

from tdn.hookspecs import hookimpl

from tdn_torch.backend import TorchBackend, TorchCudaBackend


@hookimpl
def tdn_register_backends(register):
    register("torch", TorchBackend)
    register("torch-cuda", TorchCudaBackend)
