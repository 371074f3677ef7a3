"""A Plan made real on the GPU with CuPy: buffers and weights uploaded once, the forward
captured as one CUDA graph (input copy, every kernel, output copy) and replayed."""

from __future__ import annotations

from collections.abc import Sequence

import cupy
import numpy as np
from tdn.backends.cuda import kernels
from tdn.backends.cuda.plan import Plan, Step

from tdn.backend import LayerParams, Program

_HOST_TO_DEVICE = 1  # cudaMemcpyHostToDevice
_DEVICE_TO_HOST = 2  # cudaMemcpyDeviceToHost


def pinned_empty(shape: tuple[int, ...]) -> np.ndarray:
    count = int(np.prod(shape))
    memory = cupy.cuda.alloc_pinned_memory(count * 4)
    return np.frombuffer(memory, np.float32, count).reshape(shape)


class CudaProgram(Program):
    def __init__(self, plan: Plan, params: Sequence[LayerParams], precision: str):
        self.plan = plan
        self.precision = precision
        self.buffers = [cupy.empty(shape, np.float32) for shape in plan.buffer_shapes]
        self.weights: dict[int, tuple[cupy.ndarray, cupy.ndarray]] = {}
        for step in plan.steps:
            if step.conv is not None:
                layer = params[step.nodes[0].index]
                self.weights[step.nodes[0].index] = (
                    cupy.asarray(step.conv.pack_weights(layer["weights"])),
                    cupy.asarray(np.ascontiguousarray(layer["biases"], np.float32)))
        self.host_in = pinned_empty(plan.buffer_shapes[0])
        self.host_out = pinned_empty(plan.buffer_shapes[plan.output_buffer])
        self.stream = cupy.cuda.Stream(non_blocking=True)
        with self.stream:
            self._launch_all()  # compiles and loads every kernel before capture
            self.stream.synchronize()
            self.stream.begin_capture()
            self._copy(self.buffers[0].data.ptr, self.host_in.ctypes.data, self.host_in.nbytes,
                       _HOST_TO_DEVICE)
            self._launch_all()
            out = self.buffers[plan.output_buffer]
            self._copy(self.host_out.ctypes.data, out.data.ptr, out.nbytes, _DEVICE_TO_HOST)
            self.graph = self.stream.end_capture()

    def _copy(self, dst: int, src: int, nbytes: int, kind: int) -> None:
        cupy.cuda.runtime.memcpyAsync(dst, src, nbytes, kind, self.stream.ptr)

    def _launch(self, step: Step) -> None:
        x = self.buffers[step.source]
        outs = [self.buffers[t] for t in step.targets]
        layer = step.nodes[-1].layer
        if step.op == "conv":
            packed, bias = self.weights[step.nodes[0].index]
            kernels.conv(x, packed, bias, outs[0], step.conv, self.precision)
        elif step.op == "maxpool":
            kernels.maxpool(x, outs[0], layer.size, layer.stride, layer.offset)
        elif step.op == "avgpool":
            kernels.avgpool_softmax(x, outs[0], None)
        elif step.op == "avgpool_softmax":
            kernels.avgpool_softmax(x, outs[0], outs[1], layer.groups, layer.temperature)
        elif step.op == "softmax":
            kernels.softmax(x, outs[0], layer.groups, layer.temperature)
        else:
            raise ValueError(f"unknown step {step.op}")

    def _launch_all(self) -> None:
        for step in self.plan.steps:
            self._launch(step)

    def _check(self, x: np.ndarray) -> None:
        kernels.check("input", x, self.plan.buffer_shapes[0])

    def run(self, x: np.ndarray) -> np.ndarray:
        self._check(x)
        np.copyto(self.host_in, x)
        self.graph.launch(self.stream)
        self.stream.synchronize()
        return self.host_out.copy()

    def run_layers(self, x: np.ndarray) -> list[np.ndarray]:
        self._check(x)
        with self.stream:
            self.buffers[0].set(x, self.stream)
            self._launch_all()
            outputs = [self.buffers[b].get(self.stream) for b in self.plan.layer_buffers]
            self.stream.synchronize()
        return outputs
