"""The NumPy backends: each layer kind mapped to a vectorised NumPy function.

`numpy` is the fast one (BLAS matmuls, batch-norm folded). `numpy-exact` repeats the
original Darknet's float32 operation order and reproduces its buffers bit for bit, at a
fraction of the speed; it is the proof that tdn computes Darknet's function.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tdn.backends.numpy.layer_table import EXACT, FAST, LayerFunction
from tdn.backends.numpy.plan import PLANNED_KINDS, PlannedProgram
from tdn.backends.numpy.workers import MODES as WORKER_MODES
from tdn.backends.numpy.workers import Workers

from tdn.backend import Backend, LayerParams, Program
from tdn.graph import Graph, Node


class NumpyProgram(Program):
    """Layer by layer; each node gets its input and the outputs of the layers it also reads."""

    functions: dict[str, LayerFunction] = FAST
    exact = False  # Darknet's operation order, on unfolded weights

    def __init__(self, graph: Graph, params: Sequence[LayerParams]):
        self.graph = graph
        self.params = params
        # The outputs a later node reads besides its input, kept until the end of a run.
        self.read_later = frozenset(index for node in graph.nodes for index in node.sources)

    def forward(self, node: Node, params: LayerParams, x: np.ndarray,
                sources: tuple[np.ndarray, ...] = ()) -> np.ndarray:
        return self.functions[node.kind](node, params, x, sources)

    def _run(self, x: np.ndarray, keep_all: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        outputs: dict[int, np.ndarray] = {}
        for node, params in zip(self.graph.nodes, self.params):
            x = self.forward(node, params, x, tuple(outputs[i] for i in node.sources))
            if keep_all or node.index in self.read_later:
                outputs[node.index] = x
        return x, list(outputs.values())

    def run_layers(self, x: np.ndarray) -> list[np.ndarray]:
        return self._run(x, keep_all=True)[1]

    def run(self, x: np.ndarray) -> np.ndarray:
        return self._run(x, keep_all=False)[0]


class ExactNumpyProgram(NumpyProgram):
    functions = EXACT
    exact = True


class NumpyBackend(Backend):
    name = "numpy"
    description = f"NumPy {np.__version__}, float32, BLAS matmuls"
    layer_kinds = frozenset(FAST)
    priority = 10
    parallel_modes = WORKER_MODES

    def __init__(self, workers: Workers | None = None):
        self.workers = workers

    def open(self, parallel: str | None) -> NumpyBackend:
        """A backend with a worker pool of its own (workers.py), for one Network."""
        return NumpyBackend(Workers(parallel or WORKER_MODES[0]))

    def close(self) -> None:
        if self.workers is not None:
            self.workers.close()

    def prepare(self, graph: Graph, params: Sequence[LayerParams], batch: int, precision: str) -> Program:
        # The planned path (plan.py) covers the kinds it knows; other networks run layer by layer.
        if {node.kind for node in graph.nodes} <= PLANNED_KINDS:
            return PlannedProgram(graph, params, batch, self.workers)
        return NumpyProgram(graph, params)


class ExactNumpyBackend(Backend):
    name = "numpy-exact"
    description = "NumPy in Darknet's own float32 operation order: bit-exact, slow"
    layer_kinds = frozenset(EXACT)
    folded_batchnorm = False

    def prepare(self, graph: Graph, params: Sequence[LayerParams], batch: int, precision: str) -> Program:
        return ExactNumpyProgram(graph, params)
