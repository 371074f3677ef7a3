"""A tdn graph as a trainable torch network: Darknet's training-mode forward, autograd's backward.

Convolutional and connected layers keep their arrays as a .weights file stores them
(biases, scales, rolling mean and variance, weights). With batch_normalize, training
normalises by the mini-batch's own mean and unbiased variance, (x - mean) / (sqrt(var) +
.000001), and moves the rolling statistics as Darknet does: rolling = .99 * rolling + .01 *
batch (batchnorm_layer.c). Dropout zeroes with its probability and scales the rest by
1 / (1 - p). Layers without parameters run tdn-torch's inference functions. A frozen layer
runs as at inference (rolling statistics, no gradient, no update).
"""

from __future__ import annotations

import numpy as np
import torch
from tdn.errors import CfgError
from tdn.graph import Graph, Node
from tdn.weights import RawParams
from torch.nn import functional

from tdn_torch.activations import ACTIVATIONS
from tdn_torch.layers import LAYERS

EPSILON = 1e-6  # normalize_cpu: after the square root
ROLLING = 0.01  # the batch statistics' share in each rolling update
TRAINABLE = ("weights", "biases", "scales")
UNSUPPORTED = {"crop": "a [crop] layer crops randomly while Darknet trains; tdn train does not"}


def darknet_init(graph: Graph, node: Node, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A layer's arrays as Darknet's make_*_layer fills them: He-scaled normal convolution
    weights, uniform connected weights, zero biases and statistics, unit scales."""
    arrays = {}
    for name, shape in node.layer.weight_layout(node.in_shape):
        if name == "weights" and node.kind == "convolutional":
            fan_in = int(np.prod(shape[1:]))
            value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        elif name == "weights":
            value = rng.uniform(-1, 1, shape) * np.sqrt(2.0 / shape[1])
        elif name == "scales":
            value = np.ones(shape)
        else:
            value = np.zeros(shape)
        arrays[name] = value.astype(np.float32)
    return arrays


class TrainableNetwork:
    def __init__(self, graph: Graph, params: RawParams, device: torch.device, frozen_below: int = 0):
        for node in graph.nodes:
            if node.kind in UNSUPPORTED:
                raise CfgError(f"{node.where}: layer {node.index}: {UNSUPPORTED[node.kind]}")
        self.graph = graph
        self.device = device
        self.frozen_below = frozen_below  # layers before this index are frozen
        self.params = [{name: torch.from_numpy(np.array(array, np.float32)).to(device)
                        for name, array in arrays.items()} for arrays in params]
        for node, arrays in zip(graph.nodes, self.params):
            for name, tensor in arrays.items():
                tensor.requires_grad_(name in TRAINABLE and self.trainable(node))

    def trainable(self, node: Node) -> bool:
        # Darknet's [batchnorm] layer has no update step: its scales never change.
        return node.index >= self.frozen_below and node.kind != "batchnorm"

    def parameter_groups(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(weights, which decay; biases and scales, which do not), as Darknet's update does."""
        decayed, plain = [], []
        for arrays in self.params:
            for name, tensor in arrays.items():
                if tensor.requires_grad:
                    (decayed if name == "weights" else plain).append(tensor)
        return decayed, plain

    def _normalize(self, node: Node, arrays: dict[str, torch.Tensor], x: torch.Tensor,
                   training: bool) -> torch.Tensor:
        dims = (0, 2, 3) if x.dim() == 4 else (0,)
        shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
        if training:
            mean = x.mean(dim=dims)
            variance = x.var(dim=dims, unbiased=True)
            with torch.no_grad():
                for name, stat in (("rolling_mean", mean), ("rolling_variance", variance)):
                    arrays[name].mul_(1 - ROLLING).add_(stat.detach(), alpha=ROLLING)
        else:
            mean, variance = arrays["rolling_mean"], arrays["rolling_variance"]
        return (x - mean.reshape(shape)) / (variance.sqrt().reshape(shape) + EPSILON)

    def _layer(self, node: Node, arrays: dict[str, torch.Tensor], x: torch.Tensor, sources: tuple,
               generator: torch.Generator) -> torch.Tensor:
        layer = node.layer
        training = self.trainable(node)
        if node.kind in ("convolutional", "connected"):
            bn = layer.batch_normalize
            if node.kind == "convolutional":
                out = functional.conv2d(x, arrays["weights"], None if bn else arrays["biases"],
                                        stride=layer.stride, padding=layer.padding, groups=layer.groups)
            else:
                out = functional.linear(x.flatten(1), arrays["weights"], None if bn else arrays["biases"])
            if bn:
                shape = (1, -1, 1, 1) if out.dim() == 4 else (1, -1)
                out = (self._normalize(node, arrays, out, training) * arrays["scales"].reshape(shape)
                       + arrays["biases"].reshape(shape))
            out = ACTIVATIONS[layer.activation](out)
            return out.reshape((x.shape[0],) + node.out_shape)
        if node.kind == "batchnorm":
            return self._normalize(node, arrays, x, node.index >= self.frozen_below) * arrays["scales"].reshape(
                1, -1, 1, 1)
        if node.kind == "dropout" and training:
            keep = torch.rand(x.shape, generator=generator, device=x.device) >= layer.probability
            return x * keep / (1 - layer.probability)
        return LAYERS[node.kind](node, arrays, x, sources)

    def forward(self, x: torch.Tensor, generator: torch.Generator, upto: int) -> torch.Tensor:
        """Layers 0..upto-1 in training mode; the output of layer upto-1."""
        read_later = {source for node in self.graph.nodes for source in node.sources}
        kept: dict[int, torch.Tensor] = {}
        for node, arrays in zip(self.graph.nodes[:upto], self.params):
            with torch.set_grad_enabled(node.index >= self.frozen_below):
                x = self._layer(node, arrays, x, tuple(kept[i] for i in node.sources), generator)
            if node.index in read_later:
                kept[node.index] = x
        return x

    def raw_params(self) -> RawParams:
        """The arrays as a .weights file stores them."""
        return [{name: tensor.detach().to("cpu").numpy().astype(np.float32, copy=True)
                 for name, tensor in arrays.items()} for arrays in self.params]
