"""Fusion: which consecutive layers a backend runs as one step, decided once over the graph.

`fuse(graph, rules)` cuts the graph's nodes, in order, into groups: a group is one node, or a
run of consecutive nodes whose kinds match a rule (the longest rule first) and that the rule
accepts. Nodes join a group only where that cannot change what another layer reads: every node
in a group but the last has its output read by the next node alone (no route or shortcut reads
it, since the fused step never writes it). Backends keep their own rules (what their kernels can
fuse) and map each group to a step; the rules below are the ones whose arithmetic is exact
for any backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tdn.graph import Graph, Node
from tdn.layers.convolutional import Convolutional

Group = tuple[Node, ...]

# Activations that never decrease, so that max(act(x + b)) = act(max(x) + b): a max pool can
# run on a convolution's raw output, before its bias and activation.
MONOTONIC_ACTIVATIONS = frozenset({"linear", "leaky", "relu", "logistic", "loggy", "tanh", "elu", "relie",
                                   "ramp", "plse", "hardtan", "lhtan"})
# Kinds that compute nothing at inference: their output is their input.
IDENTITY_KINDS = frozenset({"dropout", "cost"})


@dataclass(frozen=True)
class Rule:
    """Consecutive nodes of these kinds run as one step when `accepts(nodes)`."""

    name: str
    kinds: tuple[str, ...]
    accepts: Callable[[Group], bool] = lambda nodes: True

    def matches(self, nodes: Group) -> bool:
        return tuple(node.kind for node in nodes) == self.kinds and self.accepts(nodes)

    def where(self, accepts: Callable[[Group], bool]) -> Rule:
        """This rule, further limited (a backend's own conditions on top of the arithmetic)."""
        return Rule(self.name, self.kinds, lambda nodes: self.accepts(nodes) and accepts(nodes))


def _pool_commutes(nodes: Group) -> bool:
    return nodes[0].layer_as(Convolutional).activation in MONOTONIC_ACTIVATIONS


def _linear_pointwise(nodes: Group) -> bool:
    layer = nodes[0].layer_as(Convolutional)
    return (layer.activation == "linear" and layer.size == 1 and layer.stride == 1 and layer.padding == 0
            and layer.groups == 1)


# A max pool on a convolution's raw output, before bias and activation (a quarter of the data).
CONV_MAXPOOL = Rule("conv+maxpool", ("convolutional", "maxpool"), _pool_commutes)
# The global average before a linear 1x1 convolution: mean(Wx + b) = W mean(x) + b.
CONV_AVGPOOL = Rule("conv+avgpool", ("convolutional", "avgpool"), _linear_pointwise)
# The pooled logits are few: one step pools and normalises them.
AVGPOOL_SOFTMAX = Rule("avgpool+softmax", ("avgpool", "softmax"))


def fuse(graph: Graph, rules: Sequence[Rule]) -> list[Group]:
    """The graph's nodes in order, cut into groups (see the module docstring)."""
    read_by_others = {source for node in graph.nodes for source in node.sources}
    longest_first = sorted(rules, key=lambda rule: -len(rule.kinds))
    nodes, groups, index = graph.nodes, [], 0
    while index < len(nodes):
        for rule in longest_first:
            candidate = tuple(nodes[index:index + len(rule.kinds)])
            if (len(candidate) == len(rule.kinds) and rule.matches(candidate)
                    and not any(node.index in read_by_others for node in candidate[:-1])
                    and all(not node.sources for node in candidate[1:])):
                groups.append(candidate)
                break
        else:
            groups.append((nodes[index],))
        index += len(groups[-1])
    return groups
