"""The numpy backends' dispatch: one table per backend from layer kind to the function computing
it (on NCHW arrays, one layer at a time). The kinds a backend runs are this table's keys."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tdn.backends.numpy import darknet_order
from tdn.backends.numpy.activations import activate
from tdn.backends.numpy.batchnorm import batchnorm
from tdn.backends.numpy.connected import connected
from tdn.backends.numpy.convolution import convolve
from tdn.backends.numpy.crop import crop
from tdn.backends.numpy.pooling import avgpool, maxpool
from tdn.backends.numpy.route import route
from tdn.backends.numpy.shortcut import shortcut
from tdn.backends.numpy.softmax import softmax
from tdn.backends.numpy.upsample import upsample

from tdn.backend import LayerParams
from tdn.graph import Node
from tdn.layers.connected import Connected
from tdn.layers.convolutional import Convolutional
from tdn.layers.crop import Crop
from tdn.layers.maxpool import Maxpool
from tdn.layers.route import Route
from tdn.layers.shortcut import Shortcut
from tdn.layers.softmax import Softmax
from tdn.layers.upsample import Upsample

# (node, its parameters, its input, the outputs of its sources) -> its output, all NCHW.
LayerFunction = Callable[[Node, LayerParams, np.ndarray, tuple[np.ndarray, ...]], np.ndarray]


def _passthrough(node: Node, params: LayerParams, x: np.ndarray, sources: tuple[np.ndarray, ...]) -> np.ndarray:
    return x  # cost and dropout compute nothing at inference


# Kinds computed the same way in both tables: they only copy, select or resample values.
_SHARED: dict[str, LayerFunction] = {
    "maxpool": lambda node, params, x, sources: maxpool(x, node.layer_as(Maxpool), *node.out_shape[1:]),
    "route": lambda node, params, x, sources: route(sources, node.layer_as(Route)),
    "crop": lambda node, params, x, sources: crop(x, node.layer_as(Crop), node.out_shape),
    "upsample": lambda node, params, x, sources: upsample(x, node.layer_as(Upsample)),
    "cost": _passthrough,
    "dropout": _passthrough,
}

FAST: dict[str, LayerFunction] = {
    **_SHARED,
    "convolutional": lambda node, params, x, sources: convolve(x, node.layer_as(Convolutional), params["weights"],
                                                               params["biases"], *node.out_shape[1:]),
    "connected": lambda node, params, x, sources: connected(x, node.layer_as(Connected), params["weights"],
                                                            params["biases"]),
    "avgpool": lambda node, params, x, sources: avgpool(x),
    "softmax": lambda node, params, x, sources: softmax(x, node.layer_as(Softmax)),
    "shortcut": lambda node, params, x, sources: shortcut(x, sources[0], node.layer_as(Shortcut), activate),
    "batchnorm": lambda node, params, x, sources: batchnorm(x, params["scales"], params["biases"]),
}

# Darknet's own float32 operation order (darknet_order.py), weights as stored.
EXACT: dict[str, LayerFunction] = {
    **_SHARED,
    "convolutional": lambda node, params, x, sources: darknet_order.convolve_in_order(
        x, node.layer_as(Convolutional), params, *node.out_shape[1:]),
    "connected": lambda node, params, x, sources: darknet_order.connected_in_order(x, node.layer_as(Connected), params),
    "avgpool": lambda node, params, x, sources: darknet_order.avgpool_in_order(x),
    "softmax": lambda node, params, x, sources: darknet_order.softmax_in_order(x, node.layer_as(Softmax)),
    "shortcut": lambda node, params, x, sources: shortcut(x, sources[0], node.layer_as(Shortcut),
                                                          darknet_order.activate_in_double),
    "batchnorm": lambda node, params, x, sources: darknet_order.batchnorm_in_order(x, params),
}
