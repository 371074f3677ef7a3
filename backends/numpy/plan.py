"""The fast NumPy path: an execution plan per (network, batch, input size).

The plan works in NHWC so that every convolution is one (pixels x inputs) @ (inputs x filters)
matmul, picks an algorithm per convolution by its shape, and allocates every buffer once:
a producer writes straight into the zero-padded input of the next convolution, and a max
pool after a convolution runs on the raw matmul output, before bias and activation (both
commute with max when the activation never decreases), so they touch a quarter of the data.

Accuracy contract (tested): probabilities within 1e-4 relative of the plain `numpy` path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from tdn.backends.numpy.activations import activate
from tdn.backends.numpy.convolution import convolve
from tdn.backends.numpy.softmax import softmax
from tdn.backends.numpy.winograd import Winograd3x3
from threadpoolctl import ThreadpoolController

from tdn.backend import LayerParams, Program
from tdn.graph import Graph, Node

PLANNED_KINDS = frozenset({"convolutional", "maxpool", "avgpool", "softmax", "cost", "dropout"})
ALGORITHMS = ("gemm", "im2col", "winograd2", "winograd4", "plain")
# Activations that never decrease, so max(act(x + b)) = act(max(x) + b).
MONOTONIC = frozenset({"linear", "leaky", "relu", "logistic", "loggy", "tanh", "elu", "relie",
                       "ramp", "plse", "hardtan", "lhtan"})

_CONTROLLER = ThreadpoolController()


def available_cores() -> int:
    """The cores this process may run on (the affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def choose_algorithm(node: Node) -> str:
    """The convolution algorithm for a node, by shape (measured on Tiny Darknet's layers)."""
    layer = node.layer
    channels, _, _ = node.in_shape
    _, out_h, out_w = node.out_shape
    if layer.groups != 1:
        return "plain"
    if layer.size == 1 and layer.stride == 1 and layer.padding == 0:
        return "gemm"
    if layer.size == 3 and layer.stride == 1 and layer.padding == 1 and channels >= 16:
        # F(4x4) saves the most arithmetic; its tiles waste work on maps smaller than 8x8.
        return "winograd4" if min(out_h, out_w) >= 8 else "winograd2"
    return "im2col"


def maxpool_nhwc(x: np.ndarray, size: int, stride: int, padding: int, out: np.ndarray,
                 scratch: np.ndarray | None) -> None:
    """Darknet's max pool on (n, h, w, c) into out (n, oh, ow, c); cells outside never win."""
    _, h, w, _ = x.shape
    _, oh, ow, _ = out.shape
    if scratch is not None:
        before = padding // 2
        scratch.fill(-np.inf)
        rows, cols = min(h, scratch.shape[1] - before), min(w, scratch.shape[2] - before)
        scratch[:, before:before + rows, before:before + cols] = x[:, :rows, :cols]
        x = scratch
    span_h, span_w = (oh - 1) * stride + 1, (ow - 1) * stride + 1
    np.copyto(out, x[:, 0:span_h:stride, 0:span_w:stride])
    for i in range(size):
        for j in range(size):
            if i or j:
                np.maximum(out, x[:, i:i + span_h:stride, j:j + span_w:stride], out=out)


def _pool_scratch(n: int, in_shape, node: Node) -> np.ndarray | None:
    """A -inf padded copy of the input, needed only when a window leaves the input."""
    layer = node.layer
    c, h, w = in_shape
    _, oh, ow = node.out_shape
    need_h, need_w = (oh - 1) * layer.stride + layer.size, (ow - 1) * layer.stride + layer.size
    if layer.padding // 2 == 0 and need_h <= h and need_w <= w:
        return None
    return np.empty((n, need_h, need_w, c), np.float32)


class _Step:
    """One step of a plan. `input` is where the producer must write (None: anywhere)."""

    input: np.ndarray | None = None
    nodes: tuple[Node, ...]

    def __init__(self, nodes: tuple[Node, ...]):
        self.nodes = nodes
        self.buffers: list[np.ndarray] = []

    def bind(self, out: np.ndarray) -> None:
        self.out = out

    def nbytes(self) -> int:
        return sum(buffer.nbytes for buffer in self.buffers)


class _Conv(_Step):
    def __init__(self, node: Node, params: LayerParams, n: int, algorithm: str, pool: Node | None):
        super().__init__((node,) if pool is None else (node, pool))
        layer = node.layer
        c, h, w = node.in_shape
        f, oh, ow = node.out_shape
        self.node, self.algorithm, self.n, self.pool = node, algorithm, n, pool
        self.weights, self.bias = params["weights"], params["biases"]
        self.activation = layer.activation
        if algorithm in ("gemm", "im2col"):
            k = layer.size
            # (filters, c, k, k) -> (k*k*c, filters), matching the NHWC column order.
            self.matrix = np.ascontiguousarray(self.weights.transpose(2, 3, 1, 0).reshape(-1, f))
            self.raw = np.empty((n, oh, ow, f), np.float32)
            self.buffers += [self.matrix, self.raw]
        if algorithm == "im2col":
            p, s = layer.padding, layer.stride
            rows, cols = max(h + 2 * p, (oh - 1) * s + k), max(w + 2 * p, (ow - 1) * s + k)
            self.padded = np.zeros((n, rows, cols, c), np.float32)
            self.input = self.padded[:, p:p + h, p:p + w]
            self.columns = np.empty((n, oh, ow, k, k, c), np.float32)
            self.buffers += [self.padded, self.columns]
        elif algorithm.startswith("winograd"):
            self.winograd = Winograd3x3(self.weights, n, h, w, int(algorithm[-1]))
            self.input = self.winograd.padded_input[:, 1:h + 1, 1:w + 1]
            self.buffers += self.winograd.buffers
        if pool is not None:
            _, ph, pw = pool.out_shape
            self.pooled = np.empty((n, ph, pw, f), np.float32)
            self.scratch = _pool_scratch(n, node.out_shape, pool)
            self.buffers += [self.pooled] + ([self.scratch] if self.scratch is not None else [])
        if self.activation == "leaky":
            _, th, tw = self.nodes[-1].out_shape
            self.temp = np.empty((n, th, tw, f), np.float32)
            self.buffers.append(self.temp)

    def run(self, x: np.ndarray) -> np.ndarray:
        layer, n = self.node.layer, self.n
        f, oh, ow = self.node.out_shape
        if self.algorithm == "plain":
            # Grouped convolutions: the NCHW path computes bias and activation itself.
            nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            np.copyto(self.out, convolve(nchw, layer, self.weights, self.bias, oh, ow).transpose(0, 2, 3, 1))
            return self.out
        if self.algorithm == "gemm":
            np.matmul(x.reshape(-1, x.shape[-1]), self.matrix, out=self.raw.reshape(-1, f))
            y = self.raw
        elif self.algorithm == "im2col":
            k, s = layer.size, layer.stride
            for i in range(k):
                for j in range(k):
                    np.copyto(self.columns[:, :, :, i, j],
                              self.padded[:, i:i + (oh - 1) * s + 1:s, j:j + (ow - 1) * s + 1:s])
            np.matmul(self.columns.reshape(n * oh * ow, -1), self.matrix, out=self.raw.reshape(-1, f))
            y = self.raw
        else:
            y = self.winograd.run(self.bias)[:, :oh, :ow]
        if self.pool is not None:
            pool = self.pool.layer
            maxpool_nhwc(y, pool.size, pool.stride, pool.padding, self.pooled, self.scratch)
            y = self.pooled
        if not self.algorithm.startswith("winograd"):  # Winograd adds the bias in its last copy
            np.add(y, self.bias, out=y)
        if self.activation == "leaky":
            np.multiply(y, np.float32(0.1), out=self.temp)
            np.maximum(y, self.temp, out=self.out)
        elif self.activation == "relu":
            np.maximum(y, np.float32(0), out=self.out)
        elif self.activation == "linear":
            np.copyto(self.out, y)
        else:
            np.copyto(self.out, activate(y, self.activation))
        return self.out


class _Maxpool(_Step):
    def __init__(self, node: Node, n: int):
        super().__init__((node,))
        self.scratch = _pool_scratch(n, node.in_shape, node)
        self.buffers += [self.scratch] if self.scratch is not None else []

    def run(self, x: np.ndarray) -> np.ndarray:
        layer = self.nodes[0].layer
        maxpool_nhwc(x, layer.size, layer.stride, layer.padding, self.out, self.scratch)
        return self.out


class _Avgpool(_Step):
    def run(self, x: np.ndarray) -> np.ndarray:
        np.mean(x, axis=(1, 2), dtype=np.float32, keepdims=True, out=self.out)
        return self.out


class _Softmax(_Step):
    def run(self, x: np.ndarray) -> np.ndarray:
        # Darknet's softmax runs over the CHW-ordered vector.
        nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        y = softmax(nchw, self.nodes[0].layer)  # (n, chw, 1, 1), the same in NHWC
        np.copyto(self.out, y.reshape(self.out.shape))
        return self.out


class Plan:
    """Steps and buffers to run `graph` on `batch` images; not thread-safe (buffers are shared).

    algorithms: per node index, an algorithm from ALGORITHMS forcing the choice (for tests).
    fuse: run max pools inside the preceding convolution (off when every layer's output is kept).
    """

    def __init__(self, graph: Graph, params: Sequence[LayerParams], batch: int,
                 algorithms: dict[int, str] | None = None, fuse: bool = True):
        self.graph, self.batch, self.fuse = graph, batch, fuse
        self.algorithms: dict[int, str] = {}
        self.steps: list[_Step] = []
        nodes = graph.nodes
        i = 0
        while i < len(nodes):
            node = nodes[i]
            if node.kind == "convolutional":
                algorithm = (algorithms or {}).get(i) or choose_algorithm(node)
                self.algorithms[i] = algorithm
                following = nodes[i + 1] if i + 1 < len(nodes) else None
                pool = following if (fuse and following is not None and following.kind == "maxpool"
                                     and algorithm != "plain"
                                     and node.layer.activation in MONOTONIC) else None
                self.steps.append(_Conv(node, params[i], batch, algorithm, pool))
                i += 1 if pool is None else 2
                continue
            if node.kind == "maxpool":
                self.steps.append(_Maxpool(node, batch))
            elif node.kind == "avgpool":
                self.steps.append(_Avgpool((node,)))
            elif node.kind == "softmax":
                self.steps.append(_Softmax((node,)))
            # cost and dropout pass their input through at inference: no step.
            i += 1
        # Each step writes where the next one reads; the last owns its output.
        c, h, w = graph.input_shape
        self.first_input = self.steps[0].input if self.steps else None
        if self.first_input is None:
            self.first_input = np.empty((batch, h, w, c), np.float32)
        for step, following in zip(self.steps, self.steps[1:] + [None], strict=False):
            target = following.input if following is not None else None
            if target is None:
                c, h, w = step.nodes[-1].out_shape
                target = np.empty((batch, h, w, c), np.float32)
                step.buffers.append(target)
            step.bind(target)

    @property
    def nbytes(self) -> int:
        """Bytes held by the plan's preallocated buffers (weights in their new layouts included)."""
        return self.first_input.nbytes + sum(step.nbytes() for step in self.steps)

    def _run_steps(self, x: np.ndarray, keep: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        if x.shape[0] != self.batch or x.shape[2:] != self.graph.input_shape[1:]:
            raise ValueError(f"this plan runs {self.batch} x {self.graph.input_shape}, got {x.shape}")
        np.copyto(self.first_input, x.transpose(0, 2, 3, 1))
        y = self.first_input
        kept = {}
        with _CONTROLLER.limit(limits=available_cores(), user_api="blas"):
            for step in self.steps:
                y = step.run(y)
                if keep:
                    kept[step.nodes[-1].index] = np.ascontiguousarray(y.transpose(0, 3, 1, 2))
        # A layer without a step (cost, dropout) outputs its input.
        outputs, last = [], np.ascontiguousarray(x)
        for node in self.graph.nodes if keep else ():
            last = kept.get(node.index, last)
            outputs.append(last)
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2)), outputs

    def run(self, x: np.ndarray) -> np.ndarray:
        """(batch, C, H, W) -> the last layer's output (batch, C', H', W'), a new array."""
        return self._run_steps(x, keep=False)[0]

    def run_layers(self, x: np.ndarray) -> list[np.ndarray]:
        """Every layer's output in NCHW (a plan built with fuse=False: fused layers have no own output)."""
        if self.fuse:
            raise ValueError("run_layers needs a plan built with fuse=False")
        return self._run_steps(x, keep=True)[1]


class PlannedProgram(Program):
    """The `numpy` backend's Program: the fused plan for run, an unfused one for run_layers."""

    def __init__(self, graph: Graph, params: Sequence[LayerParams], batch: int):
        self.graph, self.params, self.batch = graph, params, batch
        self.plan = Plan(graph, params, batch)
        self._unfused: Plan | None = None

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.plan.run(x)

    def run_layers(self, x: np.ndarray) -> list[np.ndarray]:
        if self._unfused is None:
            self._unfused = Plan(self.graph, self.params, self.batch, fuse=False)
        return self._unfused.run_layers(x)
