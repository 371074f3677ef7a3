"""The typed arguments each launcher gets from the plan, built from the layers in plain Python
(so the values of every launch are tested without a device). A conv step's arguments are its
ConvGeometry (tiling.py); a conv_pipelined step's, its PipelinedGeometry (pipelined.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from tdn.backends.cuda.pipelined import PipelinedGeometry
from tdn.backends.cuda.tiling import ConvGeometry

from tdn.graph import Node


@dataclass(frozen=True)
class MaxpoolArgs:
    size: int
    stride: int
    offset: int


@dataclass(frozen=True)
class SoftmaxArgs:
    groups: int
    temperature: float


@dataclass(frozen=True)
class AvgpoolArgs:
    softmax: SoftmaxArgs | None  # the softmax fused into the same launch, if any


@dataclass(frozen=True)
class ConnectedArgs:
    activation: str


@dataclass(frozen=True)
class ShortcutArgs:
    alpha: float
    beta: float
    activation: str


@dataclass(frozen=True)
class RouteArgs:
    groups: int
    group_id: int


@dataclass(frozen=True)
class UpsampleArgs:
    stride: int
    scale: float


@dataclass(frozen=True)
class CropArgs:
    scale: float
    shift: float


@dataclass(frozen=True)
class BatchnormArgs:
    """Nothing beyond the buffers and the uploaded scale and shift."""


LaunchArgs: TypeAlias = (ConvGeometry | PipelinedGeometry | MaxpoolArgs | AvgpoolArgs | SoftmaxArgs | ConnectedArgs
                         | ShortcutArgs | RouteArgs | UpsampleArgs | CropArgs | BatchnormArgs)


def launch_args(op: str, nodes: tuple[Node, ...], batch: int) -> LaunchArgs:
    """The arguments of a step computing `nodes` (one node; an avgpool and its softmax when fused)."""
    node = nodes[0]
    layer: Any = node.layer  # its kind is the one the step op computes
    if op == "conv":
        return ConvGeometry.of(layer, node.in_shape, node.out_shape, batch)
    if op == "avgpool":
        return AvgpoolArgs(None)
    if op == "avgpool_softmax":
        softmax: Any = nodes[1].layer
        return AvgpoolArgs(SoftmaxArgs(softmax.groups, softmax.temperature))
    builders: dict[str, Callable[[], LaunchArgs]] = {
        "maxpool": lambda: MaxpoolArgs(layer.size, layer.stride, layer.offset),
        "softmax": lambda: SoftmaxArgs(layer.groups, layer.temperature),
        "connected": lambda: ConnectedArgs(layer.activation),
        "shortcut": lambda: ShortcutArgs(layer.alpha, layer.beta, layer.activation),
        "route": lambda: RouteArgs(layer.groups, layer.group_id),
        "upsample": lambda: UpsampleArgs(layer.stride, layer.scale),
        "batchnorm": BatchnormArgs,
        "crop": lambda: CropArgs(layer.scale, layer.shift),
    }
    return builders[op]()
