"""Export a network to ONNX with the `onnx` package's helpers (pip install 'tdn[onnx]').

The model takes and returns what tdn's backends do: float32 NCHW with a free batch axis,
output (batch, C, H, W) of the last layer, batch-norm folded into the convolutions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tdn.backend import LayerParams
from tdn.errors import TdnError
from tdn.files import atomic_file
from tdn.graph import Graph, Node
from tdn.layers.convolutional import Convolutional
from tdn.layers.maxpool import Maxpool
from tdn.layers.softmax import Softmax

# Darknet activation -> (ONNX operator, attributes); linear needs no node.
ONNX_ACTIVATIONS = {
    "leaky": ("LeakyRelu", {"alpha": 0.1}),
    "relu": ("Relu", {}),
    "logistic": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
}
EXPORTABLE_KINDS = frozenset({"convolutional", "maxpool", "avgpool", "softmax", "cost", "dropout"})
OPSET = 17


class ExportError(TdnError):
    """A network that cannot be written as ONNX."""


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export needs the onnx package: pip install 'tdn[onnx]'") from None
    return onnx


def _layer_nodes(node: Node, params: LayerParams, x: str, helper, numpy_helper,
                 initializers: list) -> tuple[list, str]:
    """The ONNX nodes computing one tdn layer from tensor x, and the name of its output."""
    name = f"layer{node.index}"
    if node.kind == "convolutional":
        layer = node.layer_as(Convolutional)
        weights, biases = f"{name}.weights", f"{name}.biases"
        initializers += [numpy_helper.from_array(params["weights"].astype(np.float32), weights),
                         numpy_helper.from_array(params["biases"].astype(np.float32), biases)]
        p, k = layer.padding, layer.size
        conv = helper.make_node("Conv", [x, weights, biases], [f"{name}.conv"], kernel_shape=[k, k],
                                strides=[layer.stride] * 2, pads=[p, p, p, p], group=layer.groups)
        if layer.activation == "linear":
            conv.output[0] = name
            return [conv], name
        if layer.activation not in ONNX_ACTIVATIONS:
            raise ExportError(f"{node.where}: activation {layer.activation} has no ONNX export "
                              f"(exportable: linear, {', '.join(ONNX_ACTIVATIONS)})")
        op, attributes = ONNX_ACTIVATIONS[layer.activation]
        return [conv, helper.make_node(op, [f"{name}.conv"], [name], **attributes)], name
    if node.kind == "maxpool":
        pool = node.layer_as(Maxpool)
        _, h, w = node.in_shape
        _, oh, ow = node.out_shape
        k, s, before = pool.size, pool.stride, pool.padding // 2
        # Darknet's window starts at -padding/2; ONNX pads with cells that never win the max.
        after_h = max(0, (oh - 1) * s + k - before - h)
        after_w = max(0, (ow - 1) * s + k - before - w)
        return [helper.make_node("MaxPool", [x], [name], kernel_shape=[k, k], strides=[s, s],
                                 pads=[before, before, after_h, after_w])], name
    if node.kind == "avgpool":
        return [helper.make_node("GlobalAveragePool", [x], [name])], name
    if node.kind == "softmax":
        softmax = node.layer_as(Softmax)
        shape, back = f"{name}.groups_shape", f"{name}.out_shape"
        initializers += [numpy_helper.from_array(np.array([0, softmax.groups, -1], np.int64), shape),
                         numpy_helper.from_array(np.array([0, -1, 1, 1], np.int64), back)]
        nodes = [helper.make_node("Reshape", [x, shape], [f"{name}.groups"])]
        scaled = f"{name}.groups"
        if softmax.temperature != 1.0:
            t = f"{name}.inverse_temperature"
            initializers.append(numpy_helper.from_array(np.array(1.0 / softmax.temperature, np.float32), t))
            nodes.append(helper.make_node("Mul", [scaled, t], [f"{name}.scaled"]))
            scaled = f"{name}.scaled"
        nodes += [helper.make_node("Softmax", [scaled], [f"{name}.softmax"], axis=-1),
                  helper.make_node("Reshape", [f"{name}.softmax", back], [name])]
        return nodes, name
    return [], x  # cost and dropout: the identity at inference


def to_onnx(graph: Graph, params: Sequence[LayerParams]):
    """An onnx.ModelProto computing graph with folded params (see tdn.weights.fold_params)."""
    onnx = _import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    unsupported = sorted({node.kind for node in graph.nodes} - EXPORTABLE_KINDS)
    if unsupported:
        raise ExportError(f"{graph.source}: layer type(s) {', '.join(unsupported)} have no ONNX export")
    c, h, w = graph.input_shape
    oc, oh, ow = graph.output_shape
    nodes, x = [], "input"
    initializers: list[TensorProto] = []
    for node, layer_params in zip(graph.nodes, params, strict=False):
        new_nodes, x = _layer_nodes(node, layer_params, x, helper, numpy_helper, initializers)
        nodes += new_nodes
    nodes.append(helper.make_node("Identity", [x], ["output"]))
    model = helper.make_model(
        helper.make_graph(
            nodes, Path(graph.source).stem or "network",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", c, h, w])],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", oc, oh, ow])],
            initializers),
        opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tdn")
    onnx.checker.check_model(model)
    return model


def export_onnx(graph: Graph, params: Sequence[LayerParams], path: str | Path) -> None:
    """Write the model to `path` whole or not at all (tdn.files.atomic_file)."""
    model = to_onnx(graph, params)
    with atomic_file(path, binary=True, what="ONNX file") as handle:
        handle.write(model.SerializeToString())
