"""The backends: `torch` on the CPU (fp32, fp64) and `torch-cuda` on an NVIDIA GPU through
cuDNN (fp32, tf32, fp16). torch is imported only when a backend is asked about or used."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from tdn.backend import Backend, LayerParams, Program
from tdn.graph import Graph

LAYER_KINDS = frozenset({"convolutional", "maxpool", "avgpool", "softmax", "cost", "dropout", "connected",
                         "shortcut", "route", "crop", "batchnorm", "upsample"})


class TorchBackend(Backend):
    name = "torch"
    description = "PyTorch on the CPU (ATen/oneDNN convolutions)"
    layer_kinds = LAYER_KINDS
    precisions = ("fp32", "fp64")
    device = "cpu"

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("torch") is None:
            return "torch is not installed (pip install torch)"
        return None

    def prepare(self, graph: Graph, params: Sequence[LayerParams], batch: int, precision: str) -> Program:
        from tdn_torch.program import TorchProgram

        return TorchProgram(graph, params, self.device, precision)


class TorchCudaBackend(TorchBackend):
    name = "torch-cuda"
    description = "PyTorch on an NVIDIA GPU (cuDNN convolutions); tf32 and fp16 on tensor cores"
    precisions = ("fp32", "tf32", "fp16")
    device = "cuda"

    def unavailable_reason(self) -> str | None:
        reason = super().unavailable_reason()
        if reason is not None:
            return reason
        import torch

        if torch.version.cuda is None:
            return f"this torch ({torch.__version__}) is built without CUDA"
        if not torch.cuda.is_available():
            return "no CUDA device visible to torch"
        return None
