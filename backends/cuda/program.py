"""A Plan made real on the device (device.py: a GPU through CuPy, or the CPU interpreter):
buffers and weights uploaded once, the forward captured as one CUDA graph (input copy, input
conversion, every kernel, output conversion, output copy) and replayed.

The activation buffers are NHWC, float32 or float16 (layout.py); the contract's float32 NCHW
arrays are converted on the device at the edges of run (kernels/convert.cu) and on the host by
run_layers. run_pixels takes decoded uint8 pixels instead, a quarter of run's bytes to upload,
and normalises them on the device (its own graph, captured on its first call).

Each step op has a launcher in LAUNCHERS, called with the program, the step (whose `args`
the plan built: arguments.py), its input arrays (the previous layer's output first, then
the outputs of the node's sources) and its output arrays; an op whose layer has weights also
has an entry in UPLOADS, which turns the layer's folded parameters into the device arrays its
launcher gets as program.weights[step index].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from tdn.backends.cuda import kernels, layout
from tdn.backends.cuda.arguments import (
    AvgpoolArgs,
    ConnectedArgs,
    CropArgs,
    MaxpoolArgs,
    RouteArgs,
    ShortcutArgs,
    SoftmaxArgs,
    UpsampleArgs,
)
from tdn.backends.cuda.device import device
from tdn.backends.cuda.pipelined import PipelinedGeometry
from tdn.backends.cuda.plan import PIPELINED_OP, Plan, Step
from tdn.backends.cuda.tiling import ConvGeometry

from tdn.backend import LayerParams, Program
from tdn.image import BYTE_TO_FLOAT
from tdn.layers.connected import weights_in_hwc_order


def _to_device(array: np.ndarray) -> Any:
    """A C-contiguous float32 copy on the device, as every kernel wrapper expects."""
    return device().upload(array)


T = TypeVar("T")


def _args(step: Step, kind: type[T]) -> T:
    """The step's launch arguments, of the type its launcher takes."""
    if not isinstance(step.args, kind):
        raise TypeError(f"step {step.op}: expected {kind.__name__}, got {type(step.args).__name__}")
    return step.args


def _upload_conv(step: Step, params: LayerParams, storage: np.dtype) -> tuple[Any, ...]:
    packed = _args(step, ConvGeometry).pack_weights(params["weights"])
    return device().upload(packed, storage), _to_device(params["biases"])


def _conv(program: CudaProgram, step: Step, inputs: list, outputs: list) -> None:
    packed, bias = program.weights[step.nodes[0].index]
    kernels.conv(inputs[0], packed, bias, outputs[0], _args(step, ConvGeometry), program.precision)


def _upload_conv_pipelined(step: Step, params: LayerParams, storage: np.dtype) -> tuple[Any, ...]:
    packed = _args(step, PipelinedGeometry).pack_weights(params["weights"])
    return device().upload(packed, storage), _to_device(params["biases"])


def _conv_pipelined(program: CudaProgram, step: Step, inputs: list, outputs: list) -> None:
    packed, bias = program.weights[step.nodes[0].index]
    kernels.conv_pipelined(inputs[0], packed, bias, outputs[0], _args(step, PipelinedGeometry))


def _maxpool(program: CudaProgram, step: Step, inputs: list, outputs: list) -> None:
    args = _args(step, MaxpoolArgs)
    kernels.maxpool(inputs[0], outputs[0], args.size, args.stride, args.offset)


def _avgpool(program: CudaProgram, step: Step, inputs: list, outputs: list) -> None:
    softmax = _args(step, AvgpoolArgs).softmax
    if softmax is None:
        kernels.avgpool_softmax(inputs[0], outputs[0], None)
    else:
        kernels.avgpool_softmax(inputs[0], outputs[0], outputs[1], softmax.groups, softmax.temperature)


def _softmax(program: CudaProgram, step: Step, inputs: list, outputs: list) -> None:
    args = _args(step, SoftmaxArgs)
    kernels.softmax(inputs[0], outputs[0], args.groups, args.temperature)


def _upload_connected(step: Step, params: LayerParams, storage: np.dtype) -> tuple[Any, ...]:
    weights = weights_in_hwc_order(params["weights"], step.nodes[0].in_shape)
    return device().upload(weights, storage), _to_device(params["biases"])


def _connected(program: CudaProgram, step: Step, inputs: list, outputs: list) -> None:
    weights, bias = program.weights[step.nodes[0].index]
    kernels.connected(inputs[0], weights, bias, outputs[0], _args(step, ConnectedArgs).activation)


def _shortcut(program: CudaProgram, step: Step, inputs: list, outputs: list) -> None:
    args = _args(step, ShortcutArgs)
    kernels.shortcut(inputs[0], inputs[1], outputs[0], args.alpha, args.beta, args.activation)


def _route(program: CudaProgram, step: Step, inputs: list, outputs: list) -> None:
    # A route reads only the layers it lists (inputs[1:]), not the previous layer's output.
    args = _args(step, RouteArgs)
    kernels.route(inputs[1:], outputs[0], args.groups, args.group_id)


def _upsample(program: CudaProgram, step: Step, inputs: list, outputs: list) -> None:
    args = _args(step, UpsampleArgs)
    kernels.upsample(inputs[0], outputs[0], args.stride, args.scale)


def _upload_batchnorm(step: Step, params: LayerParams, storage: np.dtype) -> tuple[Any, ...]:
    return _to_device(params["scales"]), _to_device(params["biases"])


def _batchnorm(program: CudaProgram, step: Step, inputs: list, outputs: list) -> None:
    scale, shift = program.weights[step.nodes[0].index]
    kernels.batchnorm(inputs[0], scale, shift, outputs[0])


def _crop(program: CudaProgram, step: Step, inputs: list, outputs: list) -> None:
    args = _args(step, CropArgs)
    kernels.crop(inputs[0], outputs[0], args.scale, args.shift)


Launcher = Callable[["CudaProgram", Step, list, list], None]
LAUNCHERS: dict[str, Launcher] = {
    "conv": _conv,
    PIPELINED_OP: _conv_pipelined,
    "maxpool": _maxpool,
    "avgpool": _avgpool,
    "avgpool_softmax": _avgpool,
    "softmax": _softmax,
    "connected": _connected,
    "shortcut": _shortcut,
    "route": _route,
    "upsample": _upsample,
    "batchnorm": _batchnorm,
    "crop": _crop,
}
# Each gets the plan's storage type. Weights are stored as the activations are: fp16 in fp16
# networks, rounded once here as the kernels' fp16 operands are; biases and scales stay float32.
UPLOADS: dict[str, Callable[[Step, LayerParams, np.dtype], tuple[Any, ...]]] = {
    "conv": _upload_conv, PIPELINED_OP: _upload_conv_pipelined, "connected": _upload_connected,
    "batchnorm": _upload_batchnorm}


class CudaProgram(Program):
    def __init__(self, plan: Plan, params: Sequence[LayerParams], precision: str):
        self.plan = plan
        self.precision = precision
        self.device = device()
        self.buffers = [self.device.empty(shape, plan.storage) for shape in plan.buffer_shapes]
        self.weights: dict[int, tuple[Any, ...]] = {
            step.nodes[0].index: UPLOADS[step.op](step, params[step.nodes[0].index], plan.storage)
            for step in plan.steps if step.op in UPLOADS}
        # The contract's float32 NCHW input and output: on the device, and in pinned host memory
        # so that the captured copies are true asynchronous DMA transfers.
        in_shape, self.out_shape = (_nchw(plan.buffer_shapes[b]) for b in (0, plan.output_buffer))
        self.input = self.device.empty(in_shape)
        self.host_in = self.device.pinned(in_shape)
        # A float32 output of one cell per image (a classifier's) is NCHW already: copied out as it
        # is, with no conversion launch.
        _, _, out_h, out_w = self.out_shape
        if plan.storage == np.float32 and out_h * out_w == 1:
            self.output = self.buffers[plan.output_buffer]
        else:
            self.output = self.device.empty(self.out_shape)
        self.host_out = self.device.pinned(tuple(self.output.shape))
        self.stream = self.device.stream()
        with self.stream:
            self._forward()  # compiles and loads every kernel before capture
            self.stream.synchronize()
            # Every launch's checks passed above, so nothing raises between begin and end.
            self.graph = self.device.capture(self.stream, self._forward)
        self._pixels: tuple[np.ndarray, Any, Any, Any] | None = None  # run_pixels' buffers and graph

    def _forward(self) -> None:
        self.device.copy_in(self.input, self.host_in)
        kernels.to_nhwc(self.input, self.buffers[0])
        self._compute()

    def _forward_pixels(self, host: np.ndarray, pixels: Any, table: Any) -> None:
        self.device.copy_in(pixels, host)
        kernels.pixels(pixels, table, self.buffers[0])
        self._compute()

    def _compute(self) -> None:
        """Every step from buffer 0, then the output to the host as float32 NCHW."""
        self._launch_all()
        if self.output is not self.buffers[self.plan.output_buffer]:
            kernels.to_nchw(self.buffers[self.plan.output_buffer], self.output)
        self.device.copy_out(self.host_out, self.output)

    def _launch_all(self) -> None:
        for step in self.plan.steps:
            inputs = [self.buffers[b] for b in step.inputs]
            outputs = [self.buffers[b] for b in step.targets]
            LAUNCHERS[step.op](self, step, inputs, outputs)

    def _check(self, x: np.ndarray) -> None:
        kernels.check("input", x, _nchw(self.plan.buffer_shapes[0]))

    def run(self, x: np.ndarray) -> np.ndarray:
        self._check(x)
        np.copyto(self.host_in, x)
        self.graph.launch(self.stream)
        self.stream.synchronize()
        return self.host_out.reshape(self.out_shape).copy()

    def run_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Decoded images (batch, H, W, C) uint8 -> run's output for their tdn.image.to_float
        input, bit for bit: the bytes are uploaded as they are and normalised on the device."""
        kernels.check("pixels", pixels, self.plan.buffer_shapes[0], np.uint8)
        if self._pixels is None:
            host = self.device.pinned(self.plan.buffer_shapes[0], np.uint8)
            on_device = self.device.empty(self.plan.buffer_shapes[0], np.uint8)
            table = self.device.upload(BYTE_TO_FLOAT)
            with self.stream:
                self._forward_pixels(host, on_device, table)  # loads the pixel kernel before capture
                self.stream.synchronize()
                graph = self.device.capture(self.stream, lambda: self._forward_pixels(host, on_device, table))
            self._pixels = (host, on_device, table, graph)
        host, _, _, graph = self._pixels
        np.copyto(host, pixels)
        graph.launch(self.stream)
        self.stream.synchronize()
        return self.host_out.reshape(self.out_shape).copy()

    def run_layers(self, x: np.ndarray) -> list[np.ndarray]:
        self._check(x)
        with self.stream:
            self.device.copy_in(self.input, np.ascontiguousarray(x))
            kernels.to_nhwc(self.input, self.buffers[0])
            self._launch_all()
            self.stream.synchronize()
        return [layout.to_nchw(self.device.download(self.buffers[b])) for b in self.plan.layer_buffers]


def _nchw(shape: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    n, h, w, c = shape
    return n, c, h, w
