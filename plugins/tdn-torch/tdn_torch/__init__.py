"""tdn-torch: the `torch` (CPU) and `torch-cuda` backends and the `tdn train` command, registered
through tdn's plugin hooks.

This module is the plugin (the `tdn` entry point names it); it imports no torch, so that
listing backends and building the command line stay cheap. torch is imported when a backend
is asked whether it can run, or when `tdn train` runs.
"""

from tdn.hookspecs import hookimpl

from tdn_torch.backend import TorchBackend, TorchCudaBackend
from tdn_torch.train import command


@hookimpl
def tdn_register_backends(register):
    register("torch", TorchBackend)
    register("torch-cuda", TorchCudaBackend)


@hookimpl
def tdn_register_commands(register):
    register("train", command.HELP, command.add_arguments, command.run)
