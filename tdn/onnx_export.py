"""Export a network to ONNX with the `onnx` package's helpers (pip install 'tdn[onnx]').

The model takes what tdn's backends do, float32 NCHW with batch-norm folded into the
convolutions and connected layers, and returns what Network.predict does: (batch, classes).
The batch axis is free; height and width are free too wherever Darknet can resize the
network (Graph.resize_refusal), and fixed at the cfg's size elsewhere. Every shape rule comes
from the layer's own file in tdn/layers; this file only writes each one as ONNX operators.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tdn.backend import LayerParams
from tdn.errors import CfgError, TdnError
from tdn.files import atomic_file
from tdn.graph import Graph, Node
from tdn.layers.base import Shape
from tdn.layers.connected import Connected
from tdn.layers.convolutional import Convolutional
from tdn.layers.crop import Crop
from tdn.layers.maxpool import Maxpool
from tdn.layers.route import Route
from tdn.layers.shortcut import Shortcut
from tdn.layers.softmax import Softmax
from tdn.layers.upsample import Upsample

OPSET = 17
TO_THE_END = np.iinfo(np.int64).max
"""A Slice end past any size: "to the end of the axis", whatever the input's size."""


class ExportError(TdnError):
    """A network that cannot be written as ONNX."""


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export needs the onnx package: pip install 'tdn[onnx]'") from None
    return onnx


class _Builder:
    """The ONNX graph as it grows: its nodes and constants, each under a name of its own."""

    def __init__(self, dynamic: bool, cfg_nodes: tuple[Node, ...]):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.dynamic = dynamic
        """Whether height and width are free (Darknet can resize the network)."""
        self.cfg_nodes = cfg_nodes
        """The nodes at the cfg's input size, which Layer.at_size starts from."""
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def constant(self, name: str, value: Any, dtype: type = np.float32) -> str:
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], output: str, **attributes: Any) -> str:
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [output], **attributes))
        return output

    def slice(self, x: str, output: str, ranges: dict[int, tuple[int, int, int]]) -> str:
        """x[start:end:step] on each axis in ranges (axis -> (start, end, step))."""
        axes = sorted(ranges)
        starts, ends, steps = zip(*(ranges[axis] for axis in axes))
        return self.op("Slice", [x, self.constant(f"{output}.starts", starts, np.int64),
                                 self.constant(f"{output}.ends", ends, np.int64),
                                 self.constant(f"{output}.axes", axes, np.int64),
                                 self.constant(f"{output}.steps", steps, np.int64)], output)

    def scale(self, x: str, factor: float, output: str) -> str:
        """factor * x as one float32 product (none where factor is 1: the product would be x)."""
        if factor == 1.0:
            return x
        return self.op("Mul", [self.constant(f"{output}.factor", factor), x], output)


# Darknet activation -> (ONNX operator, attributes) computing it in one node (the formulas of
# backends/numpy/activations.py); linear needs no node, and _activation composes a few others.
ONNX_ACTIVATIONS = {
    "leaky": ("LeakyRelu", {"alpha": 0.1}),
    "relie": ("LeakyRelu", {"alpha": 0.01}),
    "relu": ("Relu", {}),
    "logistic": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "elu": ("Elu", {"alpha": 1.0}),
    "selu": ("Selu", {"alpha": 1.6732, "gamma": 1.0507}),
}
COMPOSED_ACTIVATIONS = ("hardtan", "loggy", "ramp")


def _activation(b: _Builder, name: str, x: str, output: str, where: str) -> str:
    """Darknet's activation `name` on x."""
    if name == "linear":
        return x
    if name in ONNX_ACTIVATIONS:
        op_type, attributes = ONNX_ACTIVATIONS[name]
        return b.op(op_type, [x], output, **attributes)
    if name == "hardtan":  # clamped to [-1, 1]
        return b.op("Clip", [x, b.constant(f"{output}.min", -1.0), b.constant(f"{output}.max", 1.0)], output)
    if name == "loggy":  # 2 * logistic(x) - 1
        twice = b.scale(b.op("Sigmoid", [x], f"{output}.logistic"), 2.0, f"{output}.twice")
        return b.op("Sub", [twice, b.constant(f"{output}.one", 1.0)], output)
    if name == "ramp":  # relu(x) + 0.1 * x
        return b.op("Add", [b.op("Relu", [x], f"{output}.relu"), b.scale(x, 0.1, f"{output}.tenth")], output)
    raise ExportError(f"{where}: activation {name} has no ONNX export (exportable: linear, "
                      f"{', '.join([*ONNX_ACTIVATIONS, *COMPOSED_ACTIVATIONS])})")


def _channel_vector(values: np.ndarray) -> np.ndarray:
    """Per-channel values shaped to broadcast over (N, C, H, W)."""
    return values.astype(np.float32).reshape(-1, 1, 1)


Sources = tuple[tuple[str, Shape], ...]
"""The tensors of the earlier layers a node also reads (route, shortcut), with their shapes."""

# Each exporter: (builder, node, its folded params, input name, sources, name to give) -> the name
# of the tensor holding the layer's output, (N, *node.out_shape).
Exporter = Callable[[_Builder, Node, LayerParams, str, Sources, str], str]


def _convolutional(b: _Builder, node: Node, params: LayerParams, x: str, sources: Sources, name: str) -> str:
    layer = node.layer_as(Convolutional)
    k, p = layer.size, layer.padding
    conv = b.op("Conv", [x, b.constant(f"{name}.weights", params["weights"]),
                         b.constant(f"{name}.biases", params["biases"])], f"{name}.conv",
                kernel_shape=[k, k], strides=[layer.stride] * 2, pads=[p, p, p, p], group=layer.groups)
    return _activation(b, layer.activation, conv, name, node.where)


def _connected(b: _Builder, node: Node, params: LayerParams, x: str, sources: Sources, name: str) -> str:
    # Darknet reads the input as one C*H*W vector; the weights are (outputs, inputs) once loaded.
    layer = node.layer_as(Connected)
    flat = b.op("Flatten", [x], f"{name}.flat", axis=1)
    product = b.op("Gemm", [flat, b.constant(f"{name}.weights", params["weights"]),
                            b.constant(f"{name}.biases", params["biases"])], f"{name}.gemm", transB=1)
    activated = _activation(b, layer.activation, product, f"{name}.vector", node.where)
    return b.op("Reshape", [activated, b.constant(f"{name}.shape", [0, layer.outputs, 1, 1], np.int64)], name)


def _maxpool(b: _Builder, node: Node, params: LayerParams, x: str, sources: Sources, name: str) -> str:
    # ONNX's padding cells never win the max, as Darknet's cells outside the input; ONNX Runtime
    # takes no more padding than a window minus one, so beyond that the padding is -FLT_MAX cells
    # (the value a window with no input cell has in Darknet).
    layer = node.layer_as(Maxpool)
    before, after = layer.pads
    window = {"kernel_shape": [layer.size] * 2, "strides": [layer.stride] * 2}
    if after < layer.size:  # and so before, never more than after
        return b.op("MaxPool", [x], name, pads=[before, before, after, after], **window)
    padded = b.op("Pad", [x, b.constant(f"{name}.pads", [0, 0, before, before, 0, 0, after, after], np.int64),
                          b.constant(f"{name}.lowest", np.finfo(np.float32).min)], f"{name}.padded")
    return b.op("MaxPool", [padded], name, **window)


def _avgpool(b: _Builder, node: Node, params: LayerParams, x: str, sources: Sources, name: str) -> str:
    return b.op("GlobalAveragePool", [x], name)


def _softmax(b: _Builder, node: Node, params: LayerParams, x: str, sources: Sources, name: str) -> str:
    layer = node.layer_as(Softmax)
    groups = b.op("Reshape", [x, b.constant(f"{name}.groups_shape", [0, layer.groups, -1], np.int64)],
                  f"{name}.groups")
    if layer.temperature != 1.0:  # x / t, as Darknet divides
        groups = b.op("Div", [groups, b.constant(f"{name}.temperature", layer.temperature)], f"{name}.scaled")
    softmax = b.op("Softmax", [groups], f"{name}.softmax", axis=-1)
    return b.op("Reshape", [softmax, b.constant(f"{name}.shape", [0, -1, 1, 1], np.int64)], name)


def _identity(b: _Builder, node: Node, params: LayerParams, x: str, sources: Sources, name: str) -> str:
    return x  # cost and dropout: the identity at inference


def _batchnorm(b: _Builder, node: Node, params: LayerParams, x: str, sources: Sources, name: str) -> str:
    # x * scales + biases per channel (Batchnorm.fold), the numpy backend's two operations.
    scaled = b.op("Mul", [x, b.constant(f"{name}.scales", _channel_vector(params["scales"]))], f"{name}.scaled")
    return b.op("Add", [scaled, b.constant(f"{name}.biases", _channel_vector(params["biases"]))], name)


def _upsample(b: _Builder, node: Node, params: LayerParams, x: str, sources: Sources, name: str) -> str:
    layer = node.layer_as(Upsample)
    s = layer.stride
    # Nearest with "asymmetric" coordinates and "floor" rounding: out[y, x] = in[y / s, x / s].
    repeated = b.op("Resize", [x, "", b.constant(f"{name}.scales", [1, 1, s, s])], f"{name}.repeated",
                    mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    return b.scale(repeated, layer.scale, name)


def _route(b: _Builder, node: Node, params: LayerParams, x: str, sources: Sources, name: str) -> str:
    layer = node.layer_as(Route)
    parts = []
    for position, (source, (channels, _, _)) in enumerate(sources):
        taken = layer.channels_taken(channels)
        whole = taken == slice(0, channels)
        parts.append(source if whole else b.slice(source, f"{name}.part{position}", {1: (taken.start, taken.stop, 1)}))
    return parts[0] if len(parts) == 1 else b.op("Concat", parts, name, axis=1)


def _crop_window_at_any_size(b: _Builder, node: Node, x: str, name: str) -> str:
    """Crop.at_size in ONNX operators, for a network whose height and width are free: the cfg's
    window at the cfg's input size, else int(resize_scale * side) on each side, centred."""
    from onnx import TensorProto

    cfg_node = b.cfg_nodes[node.index]
    layer = cfg_node.layer_as(Crop)
    sides = b.slice(b.op("Shape", [x], f"{name}.shape"), f"{name}.sides", {0: (2, 4, 1)})
    as_float = b.op("Cast", [sides], f"{name}.sides_float", to=TensorProto.FLOAT)
    scaled = b.op("Mul", [as_float, b.constant(f"{name}.resize_scale", layer.resize_scale(cfg_node.in_shape))],
                  f"{name}.scaled_float")
    truncated = b.op("Cast", [b.op("Floor", [scaled], f"{name}.floor")], f"{name}.resized_sides", to=TensorProto.INT64)
    cfg_sides = b.constant(f"{name}.cfg_sides", cfg_node.in_shape[1:], np.int64)
    differences = b.op("Abs", [b.op("Sub", [sides, cfg_sides], f"{name}.difference")], f"{name}.distance")
    at_cfg_size = b.op("Equal", [b.op("ReduceSum", [differences], f"{name}.total_distance", keepdims=0),
                                 b.constant(f"{name}.zero", 0, np.int64)], f"{name}.at_cfg_size")
    window = b.op("Where", [at_cfg_size, b.constant(f"{name}.cfg_window", cfg_node.out_shape[1:], np.int64),
                            truncated], f"{name}.window_sides")
    # Crop.offsets: (side - window) / 2 before the window on each side.
    starts = b.op("Div", [b.op("Sub", [sides, window], f"{name}.margin"), b.constant(f"{name}.two", 2, np.int64)],
                  f"{name}.starts")
    ends = b.op("Add", [starts, window], f"{name}.ends")
    return b.op("Slice", [x, starts, ends, b.constant(f"{name}.axes", [2, 3], np.int64)], f"{name}.window")


def _crop(b: _Builder, node: Node, params: LayerParams, x: str, sources: Sources, name: str) -> str:
    layer = node.layer_as(Crop)
    if b.dynamic:
        window = _crop_window_at_any_size(b, node, x, name)
    else:
        top, left = layer.offsets(node.in_shape, node.out_shape)
        _, height, width = node.out_shape
        window = b.slice(x, f"{name}.window", {2: (top, top + height, 1), 3: (left, left + width, 1)})
    if layer.noadjust:  # x * 1 + 0
        return window
    scaled = b.scale(window, layer.scale, f"{name}.scaled")
    return b.op("Add", [scaled, b.constant(f"{name}.shift", layer.shift)], name)


def _shortcut(b: _Builder, node: Node, params: LayerParams, x: str, sources: Sources, name: str) -> str:
    """Shortcut.overlap's region of the input becomes alpha * input + beta * the sampled source."""
    layer = node.layer_as(Shortcut)
    ((source, from_shape),) = sources
    channels, height, width, stride, sample = layer.overlap(node.in_shape, from_shape)
    if from_shape[1:] == node.in_shape[1:]:
        # The same maps (every shortcut of a network Darknet resizes): only channels may differ.
        added = source if channels == from_shape[0] else b.slice(source, f"{name}.added", {1: (0, channels, 1)})
        region = x if channels == node.in_shape[0] else b.slice(x, f"{name}.region", {1: (0, channels, 1)})
    elif b.dynamic:
        raise ExportError(f"{node.where}: a [shortcut] that adds a {from_shape[2]}x{from_shape[1]} map to a "
                          f"{node.in_shape[2]}x{node.in_shape[1]} one has no ONNX export at a free input size")
    else:
        added = b.slice(source, f"{name}.added", {1: (0, channels, 1), 2: (0, height * stride, stride),
                                                  3: (0, width * stride, stride)})
        region = b.slice(x, f"{name}.region", {1: (0, channels, 1), 2: (0, height * sample, sample),
                                               3: (0, width * sample, sample)})
    summed = b.op("Add", [b.scale(region, layer.alpha, f"{name}.alpha"),
                          b.scale(added, layer.beta, f"{name}.beta")], f"{name}.sum")
    if sample > 1 or (height, width) != node.in_shape[1:]:
        summed = _scatter_sampled(b, x, summed, (channels, height, width), sample, name)
    elif channels < node.in_shape[0]:  # the input's other channels pass through
        rest = b.slice(x, f"{name}.rest", {1: (channels, TO_THE_END, 1)})
        summed = b.op("Concat", [summed, rest], f"{name}.joined", axis=1)
    return _activation(b, layer.activation, summed, name, node.where)


def _scatter_sampled(b: _Builder, x: str, values: str, shape: Shape, sample: int, name: str) -> str:
    """x with values (N, C, H, W) written at x[:, c, y * sample, x * sample] for c, y, x below shape.

    ScatterND indexes the leading axes, so the batch axis goes last while it runs."""
    c, h, w = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    indices = b.constant(f"{name}.cells", np.stack([c, h * sample, w * sample], axis=-1), np.int64)
    batch_last = b.op("Transpose", [x], f"{name}.input_batch_last", perm=[1, 2, 3, 0])
    values_batch_last = b.op("Transpose", [values], f"{name}.sum_batch_last", perm=[1, 2, 3, 0])
    scattered = b.op("ScatterND", [batch_last, indices, values_batch_last], f"{name}.scattered")
    return b.op("Transpose", [scattered], f"{name}.placed", perm=[3, 0, 1, 2])


EXPORTERS: dict[str, Exporter] = {
    "convolutional": _convolutional,
    "connected": _connected,
    "maxpool": _maxpool,
    "avgpool": _avgpool,
    "softmax": _softmax,
    "cost": _identity,
    "dropout": _identity,
    "batchnorm": _batchnorm,
    "upsample": _upsample,
    "route": _route,
    "crop": _crop,
    "shortcut": _shortcut,
}
EXPORTABLE_KINDS = frozenset(EXPORTERS)


def _classes_fixed(graph: Graph) -> bool:
    """Whether the number of outputs stays the same at other input sizes (an avgpool or a connected
    layer makes it so; a network that ends on its maps has more outputs at a larger size)."""
    c, h, w = graph.input_shape
    try:
        return graph.resized(2 * h, 2 * w).classes == graph.classes
    except CfgError:
        return False


def to_onnx(graph: Graph, params: Sequence[LayerParams]):
    """An onnx.ModelProto computing graph with folded params (see tdn.weights.fold_params)."""
    onnx = _import_onnx()
    from onnx import TensorProto, helper

    unsupported = sorted({node.kind for node in graph.nodes} - EXPORTABLE_KINDS)
    if unsupported:
        raise ExportError(f"{graph.source}: layer type(s) {', '.join(unsupported)} have no ONNX export")
    dynamic = graph.resize_refusal() is None
    b = _Builder(dynamic, graph.cfg_nodes or graph.nodes)
    outputs: list[str] = []
    x = "input"
    for node, layer_params in zip(graph.nodes, params, strict=True):
        sources = tuple((outputs[index], graph.nodes[index].out_shape) for index in node.sources)
        x = EXPORTERS[node.kind](b, node, layer_params, x, sources, f"layer{node.index}")
        outputs.append(x)
    b.op("Flatten", [x], "output", axis=1)
    c, h, w = graph.input_shape
    sides: list[int | str] = ["height", "width"] if dynamic else [h, w]
    classes: int | str = graph.classes if not dynamic or _classes_fixed(graph) else "classes"
    model = helper.make_model(
        helper.make_graph(
            b.nodes, Path(graph.source).stem or "network",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", c, *sides])],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", classes])],
            b.initializers),
        opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tdn")
    onnx.checker.check_model(model)
    return model


def export_onnx(graph: Graph, params: Sequence[LayerParams], path: str | Path) -> None:
    """Write the model to `path` whole or not at all (tdn.files.atomic_file)."""
    model = to_onnx(graph, params)
    with atomic_file(path, binary=True, what="ONNX file") as handle:
        handle.write(model.SerializeToString())
