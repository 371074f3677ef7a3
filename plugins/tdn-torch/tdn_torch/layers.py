"""Each tdn layer kind as a torch function of (node, parameters, input), NCHW tensors.

Shapes and options come from the tdn graph node, as every backend reads them; only the
arithmetic is torch's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tdn.graph import Node
from torch.nn import functional

from tdn_torch.activations import ACTIVATIONS

Params = dict[str, torch.Tensor]


def convolutional(node: Node, params: Params, x: torch.Tensor) -> torch.Tensor:
    layer = node.layer
    out = functional.conv2d(x, params["weights"], params["biases"], stride=layer.stride,
                            padding=layer.padding, groups=layer.groups)
    return ACTIVATIONS[layer.activation](out)


def maxpool(node: Node, params: Params, x: torch.Tensor) -> torch.Tensor:
    # Darknet starts the first window padding/2 cells before the input and lets cells outside
    # never win: pad with -inf, padding/2 before and whatever the last window needs after.
    layer = node.layer
    _, height, width = node.in_shape
    _, out_h, out_w = node.out_shape
    before = layer.padding // 2
    after_h = max(0, (out_h - 1) * layer.stride + layer.size - before - height)
    after_w = max(0, (out_w - 1) * layer.stride + layer.size - before - width)
    padded = functional.pad(x, (before, after_w, before, after_h), value=float("-inf"))
    return functional.max_pool2d(padded, layer.size, layer.stride)[:, :, :out_h, :out_w]


def avgpool(node: Node, params: Params, x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3), keepdim=True)


def softmax(node: Node, params: Params, x: torch.Tensor) -> torch.Tensor:
    # Always in at least float32: fp16 exponentials lose the small probabilities.
    layer = node.layer
    parts = x.reshape(x.shape[0], layer.groups, -1)
    out = torch.softmax(parts.to(torch.promote_types(parts.dtype, torch.float32)) / layer.temperature, dim=2)
    return out.to(x.dtype).reshape((x.shape[0],) + node.out_shape)


def identity(node: Node, params: Params, x: torch.Tensor) -> torch.Tensor:
    return x


LAYERS: dict[str, Callable[[Node, Params, torch.Tensor], torch.Tensor]] = {
    "convolutional": convolutional,
    "maxpool": maxpool,
    "avgpool": avgpool,
    "softmax": softmax,
    "cost": identity,
    "dropout": identity,
}
