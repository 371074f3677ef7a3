"""The backend-neutral layer graph: every layer's options and shapes, no arrays."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from tdn.cfg import Section, parse_cfg_text, read_cfg, warn_unused
from tdn.errors import CfgError
from tdn.layers import DARKNET_ONLY_KINDS, LAYER_KINDS, SECTION_ALIASES, Layer, Shape, ShapeError
from tdn.layers.net import NetOptions

SUMMARY_HEADER = "layer     filters    size              input                output"


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


@dataclass(frozen=True)
class Graph:
    source: str
    net: NetOptions
    layers: tuple[Layer, ...]
    wheres: tuple[str, ...]
    nodes: tuple[Node, ...]

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

    def resized(self, height: int, width: int) -> Graph:
        """The same layers at another input size (Darknet's resize_network)."""
        if (height, width) == (self.net.height, self.net.width):
            return self
        net = replace(self.net, height=height, width=width)
        return Graph(self.source, net, self.layers, self.wheres,
                     infer_shapes(net, self.layers, self.wheres))

    def flops(self) -> float:
        return sum(node.layer.flops(node.in_shape, node.out_shape) for node in self.nodes)

    def summary(self) -> str:
        lines = [SUMMARY_HEADER]
        for node in self.nodes:
            lines.append(f"{node.index:5d} " + node.layer.describe(node.in_shape, node.out_shape))
        lines.append(f"Total BFLOPs {self.flops() / 1e9:.3f}")
        return "\n".join(lines)


def infer_shapes(net: NetOptions, layers: tuple[Layer, ...], wheres: tuple[str, ...]) -> tuple[Node, ...]:
    shape: Shape = (net.channels, net.height, net.width)
    nodes = []
    for index, (layer, where) in enumerate(zip(layers, wheres)):
        try:
            out_shape = layer.output_shape(shape)
        except ShapeError as error:
            raise CfgError(f"{where}: layer {index} [{layer.kind}] at input "
                           f"{shape[0]}x{shape[1]}x{shape[2]}: {error}") from None
        nodes.append(Node(index, layer, shape, out_shape, where))
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


__all__ = ["Graph", "Node", "build_graph", "graph_from_text", "load_graph"]
