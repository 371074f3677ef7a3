"""The `reference` backend: every layer by its definition in float64, as plainly as possible.

Direct loops over each layer's definition, no im2col, no BLAS, batch-norm unfolded as Darknet
computes it, so that it is easy to read and check against Darknet's C code. It is slow and never
picked by backend="auto"; it exists so that tdn.testing can check every fast backend against it.

One file per layer kind, each with ``forward(node, params, x, sources)``: ``x`` is the previous
layer's output (float64, NCHW), ``sources`` the outputs of the layers in ``node.sources``.
Adding a layer kind means adding its file and its entry in LAYERS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tdn.backend import Backend, LayerParams, Program
from tdn.graph import Graph, Node
from tdn.hookspecs import hookimpl
from tdn.testing.reference import (
    avgpool,
    batchnorm,
    connected,
    convolutional,
    crop,
    identity,
    maxpool,
    route,
    shortcut,
    softmax,
    upsample,
)

Forward = Callable[[Node, LayerParams, np.ndarray, tuple[np.ndarray, ...]], np.ndarray]

LAYERS: dict[str, Forward] = {
    "convolutional": convolutional.forward,
    "maxpool": maxpool.forward,
    "avgpool": avgpool.forward,
    "softmax": softmax.forward,
    "cost": identity.forward,
    "dropout": identity.forward,
    "connected": connected.forward,
    "shortcut": shortcut.forward,
    "route": route.forward,
    "crop": crop.forward,
    "batchnorm": batchnorm.forward,
    "upsample": upsample.forward,
}


class ReferenceProgram(Program):
    def __init__(self, graph: Graph, params: Sequence[LayerParams]):
        self.graph = graph
        self.params = [{name: array.astype(np.float64) for name, array in arrays.items()} for arrays in params]

    def run_layers_float64(self, x: np.ndarray) -> list[np.ndarray]:
        """Every layer's output in float64, before the contract's cast to float32."""
        x = np.asarray(x, dtype=np.float64)
        outputs: list[np.ndarray] = []
        for node, params in zip(self.graph.nodes, self.params):
            x = LAYERS[node.kind](node, params, x, tuple(outputs[i] for i in node.sources))
            outputs.append(x)
        return outputs

    def run_layers(self, x: np.ndarray) -> list[np.ndarray]:
        return [np.ascontiguousarray(out, dtype=np.float32) for out in self.run_layers_float64(x)]

    def run(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.run_layers_float64(x)[-1], dtype=np.float32)


class ReferenceBackend(Backend):
    name = "reference"
    description = "float64 loops over each layer's definition (for tests: slow)"
    layer_kinds = frozenset(LAYERS)
    precisions = ("fp64",)
    priority = -100  # never the best available: "auto" must not pick it
    folded_batchnorm = False  # batch-norm as Darknet computes it, from the stored arrays

    def prepare(self, graph: Graph, params: Sequence[LayerParams], batch: int, precision: str) -> Program:
        return ReferenceProgram(graph, params)


@hookimpl
def tdn_register_backends(register):
    register("reference", ReferenceBackend)
