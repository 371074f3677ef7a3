"""The fusion pass (tdn/fusion.py): which consecutive layers a backend runs as one step."""

from __future__ import annotations

from tdn.fusion import AVGPOOL_SOFTMAX, CONV_AVGPOOL, CONV_MAXPOOL, fuse
from tdn.graph import graph_from_text

NET = """
[net]
channels=3
height=16
width=16

[convolutional]
filters=8
size=3
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=8
size=3
pad=1
activation={second}

[maxpool]
size=2
stride=2

[convolutional]
filters=8
size=1
activation=linear

[shortcut]
from={shortcut_from}
activation=linear

[convolutional]
filters=5
size=1
activation=linear

[avgpool]

[softmax]
"""


def _kinds(groups):
    return [tuple(node.kind for node in group) for group in groups]


def test_rules_group_consecutive_layers_and_keep_every_node_once():
    graph = graph_from_text(NET.format(second="leaky", shortcut_from=-2))
    groups = fuse(graph, [CONV_MAXPOOL, CONV_AVGPOOL, AVGPOOL_SOFTMAX])
    assert [node.index for group in groups for node in group] == list(range(len(graph.nodes)))
    assert _kinds(groups) == [("convolutional", "maxpool"), ("convolutional", "maxpool"), ("convolutional",),
                              ("shortcut",), ("convolutional", "avgpool"), ("softmax",)]
    assert _kinds(fuse(graph, [AVGPOOL_SOFTMAX])) == [(node.kind,) for node in graph.nodes[:7]] + [
        ("avgpool", "softmax")]
    assert len(fuse(graph, [])) == len(graph.nodes)


def test_conditions_and_outputs_read_elsewhere_prevent_a_fusion():
    # A max pool does not commute with a decreasing activation (Darknet's stair is not monotonic).
    stair = graph_from_text(NET.format(second="stair", shortcut_from=-2))
    assert _kinds(fuse(stair, [CONV_MAXPOOL]))[:3] == [("convolutional", "maxpool"), ("convolutional",), ("maxpool",)]
    # The shortcut reads layer 2's output (the conv before the pool): that pair stays apart.
    read = graph_from_text(NET.format(second="leaky", shortcut_from=-3))
    assert read.nodes[5].sources == (2,)
    assert _kinds(fuse(read, [CONV_MAXPOOL]))[:3] == [("convolutional", "maxpool"), ("convolutional",), ("maxpool",)]
    limited = CONV_MAXPOOL.where(lambda nodes: nodes[0].index != 0)
    assert _kinds(fuse(read, [limited]))[:2] == [("convolutional",), ("maxpool",)]
