"""The backend-neutral layer graph: every layer's options and shapes, no arrays."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from tdn.cfg import Section, parse_cfg_text, read_cfg, warn_unused
from tdn.errors import CfgError
from tdn.layers import DARKNET_ONLY_KINDS, LAYER_KINDS, SECTION_ALIASES, Layer, Shape, ShapeError, Source
from tdn.layers.net import NetOptions

LayerKind = TypeVar("LayerKind", bound=Layer)

# Per buffer (a layer's output for one image, or its weights): VGG-16's largest, its first
# [connected] layer's weights, holds 103 million values.
MAX_BUFFER_VALUES = 2**28

SUMMARY_HEADER = "layer     filters    size              input                output"


class ResizeError(CfgError):
    """A network that Darknet cannot run at an input size other than its cfg's."""


@dataclass(frozen=True)
class Node:
    """One layer of a graph at one input size."""

    index: int
    layer: Layer
    in_shape: Shape
    out_shape: Shape
    where: str  # "file:line" of the section, for error messages
    sources: tuple[int, ...] = ()
    """Absolute indices of earlier layers whose outputs this layer also reads
    (route, shortcut); a program passes those outputs to the layer with its input."""

    @property
    def kind(self) -> str:
        return self.layer.kind

    def layer_as(self, cls: type[LayerKind]) -> LayerKind:
        """The layer as the class its kind names, for code that has already dispatched on the kind."""
        if not isinstance(self.layer, cls):
            raise TypeError(f"{self.where}: layer {self.index} is [{self.kind}], not [{cls.kind}]")
        return self.layer

    def sources_with_shapes(self, nodes: tuple[Node, ...]) -> tuple[Source, ...]:
        return tuple((index, nodes[index].out_shape) for index in self.sources)


@dataclass(frozen=True)
class Graph:
    source: str
    net: NetOptions
    layers: tuple[Layer, ...]
    wheres: tuple[str, ...]
    nodes: tuple[Node, ...]
    cfg_nodes: tuple[Node, ...] = ()
    """The nodes at the cfg's own input size when this graph was resized (else empty)."""

    @property
    def input_shape(self) -> Shape:
        return (self.net.channels, self.net.height, self.net.width)

    @property
    def output_shape(self) -> Shape:
        return self.nodes[-1].out_shape

    @property
    def classes(self) -> int:
        c, h, w = self.output_shape
        return c * h * w

    def resize_refusal(self) -> str | None:
        """Why Darknet's resize_network cannot run this network at another size (None: it can).

        Darknet resizes the layers in order up to and including the first avgpool (those after
        it see a 1x1 input at any size) and exits at a kind it cannot resize."""
        nodes = self.cfg_nodes or self.nodes
        for node in nodes:
            reason = node.layer.resize_refusal(node.in_shape, node.sources_with_shapes(nodes))
            if reason is not None:
                return f"{node.where}: layer {node.index} [{node.kind}]: {reason}"
            if node.kind == "avgpool":
                break
        return None

    def check_resizable(self) -> None:
        reason = self.resize_refusal()
        if reason is not None:
            raise ResizeError(f"{reason}, so {self.source} runs only at its cfg's input size "
                              f"{self.net.width}x{self.net.height} (letterbox or stretch the image instead)")

    def resized(self, height: int, width: int) -> Graph:
        """The same layers at another input size (Darknet's resize_network); ResizeError where
        Darknet cannot resize the network."""
        if (height, width) == (self.net.height, self.net.width):
            return self
        self.check_resizable()
        cfg_nodes = self.cfg_nodes or self.nodes
        net = replace(self.net, height=height, width=width)
        return Graph(self.source, net, self.layers, self.wheres,
                     infer_shapes(net, self.layers, self.wheres, cfg_nodes), cfg_nodes)

    def flops(self) -> float:
        return sum(node.layer.flops(node.in_shape, node.out_shape) for node in self.nodes)

    def summary(self) -> str:
        lines = [SUMMARY_HEADER]
        for node in self.nodes:
            sources = node.sources_with_shapes(self.nodes)
            lines.append(f"{node.index:5d} " + node.layer.describe(node.in_shape, node.out_shape, sources))
        lines.append(f"Total BFLOPs {self.flops() / 1e9:.3f}")
        return "\n".join(lines)


def resolve_references(layer: Layer, index: int, where: str) -> tuple[int, ...]:
    """Absolute indices of the earlier layers `layer` reads (Darknet: negative is relative)."""
    resolved = []
    for reference in layer.references():
        absolute = index + reference if reference < 0 else reference
        if not 0 <= absolute < index:
            raise CfgError(f"{where}: layer {index} [{layer.kind}] refers to layer {reference} "
                           f"(= {absolute}), but only layers 0..{index - 1} come before it")
        resolved.append(absolute)
    return tuple(resolved)


def _check_buffer(values: int, what: str, where: str) -> None:
    """A cfg whose buffers would be absurd is a cfg error here, not a failed allocation in a backend."""
    if values > MAX_BUFFER_VALUES:
        raise CfgError(f"{where}: {what} would hold {values} values, more than the {MAX_BUFFER_VALUES} "
                       f"(1 GiB of float32) tdn allows in one buffer")


def infer_shapes(net: NetOptions, layers: tuple[Layer, ...], wheres: tuple[str, ...],
                 cfg_nodes: tuple[Node, ...] = ()) -> tuple[Node, ...]:
    """Every layer's shapes at net's input size; cfg_nodes (those at the cfg's size) when resizing."""
    shape: Shape = (net.channels, net.height, net.width)
    nodes: list[Node] = []
    for index, (layer, where) in enumerate(zip(layers, wheres)):
        if cfg_nodes:
            layer = layer.at_size(cfg_nodes[index].in_shape, shape)
        sources = resolve_references(layer, index, where)
        try:
            out_shape = layer.output_shape(shape, tuple((i, nodes[i].out_shape) for i in sources))
        except ShapeError as error:
            raise CfgError(f"{where}: layer {index} [{layer.kind}] at input "
                           f"{shape[0]}x{shape[1]}x{shape[2]}: {error}") from None
        _check_buffer(math.prod(out_shape), f"layer {index} [{layer.kind}]'s output", where)
        _check_buffer(sum(math.prod(size) for _, size in layer.weight_layout(shape)),
                      f"layer {index} [{layer.kind}]'s weights", where)
        nodes.append(Node(index, layer, shape, out_shape, where, sources))
        shape = out_shape
    return tuple(nodes)


def _layer_from_section(section: Section) -> Layer:
    kind = SECTION_ALIASES.get(section.header, section.header)
    if kind == "net":
        raise CfgError(f"{section.where()}: [{section.header}] may only be the first section")
    if kind not in LAYER_KINDS:
        if kind in DARKNET_ONLY_KINDS:
            raise CfgError(f"{section.where()}: layer type [{section.header}] is not supported by tdn")
        known = ", ".join(sorted(LAYER_KINDS))
        raise CfgError(f"{section.where()}: unknown layer type [{section.header}] (known: {known})")
    layer = LAYER_KINDS[kind].from_section(section)
    warn_unused(section)
    return layer


def build_graph(sections: list[Section], source: str) -> Graph:
    first = sections[0]
    if SECTION_ALIASES.get(first.header, first.header) != "net":
        raise CfgError(f"{first.where()}: the first section must be [net] or [network], got [{first.header}]")
    net = NetOptions.from_section(first)
    _check_buffer(net.channels * net.height * net.width,
                  f"the {net.width}x{net.height}x{net.channels} input", first.where())
    warn_unused(first)
    if len(sections) < 2:
        raise CfgError(f"{source}: the network has no layers")
    layers = tuple(_layer_from_section(section) for section in sections[1:])
    wheres = tuple(section.where() for section in sections[1:])
    return Graph(source, net, layers, wheres, infer_shapes(net, layers, wheres))


def load_graph(path: str | Path) -> Graph:
    return build_graph(read_cfg(path), str(path))


def graph_from_text(text: str, source: str = "<cfg>") -> Graph:
    return build_graph(parse_cfg_text(text, source), source)


__all__ = ["Graph", "Node", "ResizeError", "build_graph", "graph_from_text", "load_graph"]
