"""A tdn graph as a sequence of torch layer functions, parameters moved to the device once."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
import torch
from tdn.backend import LayerParams, Program
from tdn.graph import Graph

from tdn_torch.layers import LAYERS

DTYPES = {"fp64": torch.float64, "fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16}


class TorchProgram(Program):
    def __init__(self, graph: Graph, params: Sequence[LayerParams], device: str, precision: str):
        self.graph = graph
        self.device = torch.device(device)
        self.dtype = DTYPES[precision]
        # fp32 means fp32 products: tensor-core tf32 only when asked for.
        self.allow_tf32 = precision == "tf32"
        self.params = [{name: torch.from_numpy(np.ascontiguousarray(array)).to(self.device, self.dtype)
                        for name, array in arrays.items()} for arrays in params]

    def _layers(self, x: np.ndarray):
        """Yield each layer's output tensor in order."""
        read_later = {source for node in self.graph.nodes for source in node.sources}
        kept: dict[int, torch.Tensor] = {}  # the outputs route and shortcut layers read
        with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=self.allow_tf32):
            tensor = torch.from_numpy(x).to(self.device, self.dtype)
            for node, params in zip(self.graph.nodes, self.params):
                tensor = LAYERS[node.kind](node, params, tensor, tuple(kept[i] for i in node.sources))
                if node.index in read_later:
                    kept[node.index] = tensor
                yield tensor

    @staticmethod
    def _to_host(tensor: torch.Tensor) -> np.ndarray:
        # Always a copy: a pass-through layer's tensor is the caller's input array.
        return tensor.to("cpu", torch.float32, copy=True).contiguous().numpy()

    def run_layers(self, x: np.ndarray) -> list[np.ndarray]:
        return [self._to_host(tensor) for tensor in self._layers(x)]

    def run(self, x: np.ndarray) -> np.ndarray:
        last = deque(self._layers(x), maxlen=1)  # earlier layers' tensors are freed as it goes
        return self._to_host(last[0])
