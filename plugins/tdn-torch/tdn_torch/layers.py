"""Each tdn layer kind as a torch function of (node, parameters, input, sources), NCHW tensors;
`sources` are the outputs of the layers in node.sources (route, shortcut).

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
Sources = tuple[torch.Tensor, ...]


def convolutional(node: Node, params: Params, x: torch.Tensor, sources: Sources) -> torch.Tensor:
    layer = node.layer
    out = functional.conv2d(x, params["weights"], params["biases"], stride=layer.stride,
                            padding=layer.padding, groups=layer.groups)
    return ACTIVATIONS[layer.activation](out)


def maxpool(node: Node, params: Params, x: torch.Tensor, sources: Sources) -> torch.Tensor:
    # Cells outside the input never win (a window holding none gives -FLT_MAX): pad with -FLT_MAX
    # as Maxpool.pads says, then pool without padding.
    layer = node.layer
    before, after = layer.pads
    padded = functional.pad(x, (before, after, before, after), value=torch.finfo(torch.float32).min)
    return functional.max_pool2d(padded, layer.size, layer.stride)


def avgpool(node: Node, params: Params, x: torch.Tensor, sources: Sources) -> torch.Tensor:
    return x.mean(dim=(2, 3), keepdim=True)


def softmax(node: Node, params: Params, x: torch.Tensor, sources: Sources) -> torch.Tensor:
    # Always in at least float32: fp16 exponentials lose the small probabilities.
    layer = node.layer
    parts = x.reshape(x.shape[0], layer.groups, -1)
    out = torch.softmax(parts.to(torch.promote_types(parts.dtype, torch.float32)) / layer.temperature, dim=2)
    return out.to(x.dtype).reshape((x.shape[0],) + node.out_shape)


def identity(node: Node, params: Params, x: torch.Tensor, sources: Sources) -> torch.Tensor:
    return x


def connected(node: Node, params: Params, x: torch.Tensor, sources: Sources) -> torch.Tensor:
    out = functional.linear(x.flatten(1), params["weights"], params["biases"])
    return ACTIVATIONS[node.layer.activation](out).reshape((x.shape[0],) + node.out_shape)


def shortcut(node: Node, params: Params, x: torch.Tensor, sources: Sources) -> torch.Tensor:
    # Darknet adds only where the two overlap, reading the larger one every `stride` cells and
    # writing every `sample` cells; the rest of the output is the input.
    layer, (added,) = node.layer, sources
    channels, height, width, stride, sample = layer.overlap(node.in_shape, tuple(added.shape[1:]))
    out = x.clone()
    region = (slice(None), slice(0, channels), slice(0, height * sample, sample), slice(0, width * sample, sample))
    out[region] = layer.alpha * out[region] + layer.beta * added[:, :channels, 0:height * stride:stride,
                                                                 0:width * stride:stride]
    return ACTIVATIONS[layer.activation](out)


def route(node: Node, params: Params, x: torch.Tensor, sources: Sources) -> torch.Tensor:
    return torch.cat([s[:, node.layer.channels_taken(s.shape[1])] for s in sources], dim=1)


def crop(node: Node, params: Params, x: torch.Tensor, sources: Sources) -> torch.Tensor:
    layer = node.layer
    top, left = layer.offsets(node.in_shape, node.out_shape)
    _, height, width = node.out_shape
    return x[:, :, top:top + height, left:left + width] * layer.scale + layer.shift


def batchnorm(node: Node, params: Params, x: torch.Tensor, sources: Sources) -> torch.Tensor:
    return x * params["scales"][:, None, None] + params["biases"][:, None, None]


def upsample(node: Node, params: Params, x: torch.Tensor, sources: Sources) -> torch.Tensor:
    stride = node.layer.stride
    return x.repeat_interleave(stride, dim=2).repeat_interleave(stride, dim=3) * node.layer.scale


LAYERS: dict[str, Callable[[Node, Params, torch.Tensor, Sources], torch.Tensor]] = {
    "convolutional": convolutional,
    "maxpool": maxpool,
    "avgpool": avgpool,
    "softmax": softmax,
    "cost": identity,
    "dropout": identity,
    "connected": connected,
    "shortcut": shortcut,
    "route": route,
    "crop": crop,
    "batchnorm": batchnorm,
    "upsample": upsample,
}
