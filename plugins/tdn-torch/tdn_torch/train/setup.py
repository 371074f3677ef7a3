"""From a cfg, a data set and the command's choices to a ready training run (loop.Run)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tdn.cfg import parse_cfg_text, read_cfg
from tdn.errors import CfgError, TdnError
from tdn.graph import build_graph
from tdn.layers.softmax import Softmax
from tdn.weights import read_weights

from tdn_torch.train.data import Dataset
from tdn_torch.train.finetune import adapted_cfg_text, classifier_index
from tdn_torch.train.loop import Run
from tdn_torch.train.model import darknet_init
from tdn_torch.train.options import TrainOptions


def _head(graph, sections) -> tuple[int, float]:
    """The softmax layer the loss reads, and 1 + the scale of a [cost] layer after it."""
    nodes = graph.nodes
    softmax = [node.index for node in nodes if node.kind == "softmax"]
    if not softmax or any(node.kind != "cost" for node in nodes[softmax[-1] + 1:]):
        raise CfgError(f"{graph.source}: tdn train needs a network that ends in [softmax] "
                       f"(optionally followed by [cost])")
    node = nodes[softmax[-1]]
    layer = node.layer_as(Softmax)
    if layer.groups != 1 or layer.temperature != 1:
        raise CfgError(f"{node.where}: tdn train needs [softmax] with groups=1 and temperature=1")
    scale = 1.0
    for cost in nodes[node.index + 1:]:
        section = sections[cost.index + 1]
        if section.choice("type", "sse", ("sse",)) == "sse":
            # cost_layer.c adds scale * (truth - output) to the softmax's own delta.
            scale += section.float("scale", 1)
    return node.index, scale


def prepare(cfg: str, dataset: Dataset, seed: int, device: torch.device, *, weights: str | None = None,
            classes: int | None = None, freeze: bool = False, max_batches: int | None = None,
            adapted_cfg: Path | None = None) -> Run:
    try:
        text = Path(cfg).read_bytes().decode("latin-1")
    except OSError as error:
        raise CfgError(f"{cfg}: cannot read cfg: {error.strerror or error}") from None
    trained = build_graph(read_cfg(cfg), cfg)
    source = cfg
    if classes is not None:
        index = classifier_index(trained)
        text = adapted_cfg_text(text, read_cfg(cfg)[index + 1], trained.nodes[index].kind, classes)
        source = str(adapted_cfg)
    sections = parse_cfg_text(text, source)
    graph = build_graph(sections, source)
    options = TrainOptions.from_section(sections[0])
    if max_batches is not None:
        options = replace(options, max_batches=max_batches)
    if options.max_batches < 1:
        raise CfgError(f"{cfg}: [net] sets no max_batches; give --max-batches N")
    if options.width != options.height:
        raise CfgError(f"{cfg}: tdn train needs width == height (Darknet's classifier training crops "
                       f"width x width), got {options.width}x{options.height}")
    head, loss_scale = _head(graph, sections)
    if graph.classes != len(dataset.names):
        hint = "" if weights else " (or start from --weights INIT --classes N)"
        raise TdnError(f"{source}: the network has {graph.classes} outputs but the data has "
                       f"{len(dataset.names)} classes{hint}")
    rng = np.random.default_rng((seed, 0))
    if weights is None:
        params = [darknet_init(graph, node, rng) for node in graph.nodes]
    else:
        _, params = read_weights(weights, trained)
        if classes is not None:
            index = classifier_index(trained)
            params[index] = darknet_init(graph, graph.nodes[index], rng)
    frozen_below = classifier_index(graph) if freeze else 0
    return Run(graph, text, options, dataset, params, seed, device, head, loss_scale, frozen_below)
