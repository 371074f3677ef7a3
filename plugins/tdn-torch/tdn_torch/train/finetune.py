"""Fine-tuning: a trained network with its classifier replaced for another number of classes.

The classifier is the last convolutional or connected layer before the softmax; its filters
(or output) option becomes the new class count in a copy of the cfg text, and its arrays
start as Darknet initialises a new layer. Every other layer keeps the trained arrays.
"""

from __future__ import annotations

from tdn.cfg import Section
from tdn.errors import CfgError
from tdn.graph import Graph

CLASS_OPTION = {"convolutional": "filters", "connected": "output"}


def classifier_index(graph: Graph) -> int:
    softmax = next((node.index for node in graph.nodes if node.kind == "softmax"), None)
    candidates = [node.index for node in graph.nodes[:softmax] if node.kind in CLASS_OPTION]
    if softmax is None or not candidates:
        raise CfgError(f"{graph.source}: no convolutional or connected layer before a [softmax] to replace")
    index = candidates[-1]
    later = [node for node in graph.nodes[index + 1:] if node.layer.weight_layout(node.in_shape)]
    if later:
        raise CfgError(f"{later[0].where}: layer {later[0].index} [{later[0].kind}] has parameters after the "
                       f"classifier (layer {index}); --classes cannot resize it")
    return index


def adapted_cfg_text(text: str, section: Section, kind: str, classes: int) -> str:
    """The cfg text with the classifier section's class option set to `classes`."""
    key = CLASS_OPTION[kind]
    lines = text.splitlines()
    option = section.options.get(key)
    if option is not None:
        lines[option.line - 1] = f"{key}={classes}"
    else:
        lines.insert(section.line, f"{key}={classes}")
    return "\n".join(lines) + "\n"
