"""The execution plan: which kernel each layer becomes and which buffers it reads and writes.

Pure Python over the graph, so the fusion and buffer decisions are testable without a GPU.
Buffer 0 is the input; every computing layer gets its own output buffer (so run_layers can
return every layer), and layers that compute nothing (dropout, cost) reuse their input's.
Buffers are NHWC, of the precision's storage type (layout.py).

Wiring a new layer kind is an entry in STEP_OPS here plus the op's launcher (and, for a layer
with weights, its upload) in program.py; a step already receives the buffers of the layers
its node reads besides its input (Node.sources: route, shortcut).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from tdn.backends.cuda.arguments import LaunchArgs, launch_args
from tdn.backends.cuda.layout import STORAGE, nhwc
from tdn.backends.cuda.pipelined import PipelinedGeometry, PipelinedVariant
from tdn.backends.cuda.tiling import ConvGeometry
from tdn.backends.cuda.tuning import Variant, rule_choice

from tdn.fusion import AVGPOOL_SOFTMAX, IDENTITY_KINDS, fuse
from tdn.graph import Graph, Node

# The step op computing each layer kind; the groups tdn.fusion makes with FUSION_RULES run as
# one step each, named in FUSED_OPS.
STEP_OPS = {"convolutional": "conv", "maxpool": "maxpool", "avgpool": "avgpool", "softmax": "softmax",
            "connected": "connected", "shortcut": "shortcut", "route": "route", "upsample": "upsample",
            "batchnorm": "batchnorm", "crop": "crop"}
LAYER_KINDS = frozenset(STEP_OPS) | IDENTITY_KINDS
FUSION_RULES = (AVGPOOL_SOFTMAX,)  # the pooled logits are few: one launch pools and normalises them
FUSED_OPS = {AVGPOOL_SOFTMAX.kinds: "avgpool_softmax"}
PIPELINED_OP = "conv_pipelined"  # a convolution given a conv_pipelined.cu variant (fp16 only)


@dataclass(frozen=True)
class Step:
    """One launch: op name, input buffers, output buffers, the nodes it computes, and its launcher's
    arguments (arguments.py)."""

    op: str  # a value of STEP_OPS or FUSED_OPS, or PIPELINED_OP
    inputs: tuple[int, ...]  # the previous layer's output, then those of the node's sources
    targets: tuple[int, ...]
    nodes: tuple[Node, ...]
    args: LaunchArgs


@dataclass(frozen=True)
class Plan:
    batch: int
    buffer_shapes: tuple[tuple[int, int, int, int], ...]  # (batch, H, W, C) of each buffer
    layer_buffers: tuple[int, ...]  # the buffer holding each layer's output
    steps: tuple[Step, ...]
    storage: np.dtype = np.dtype(np.float32)  # of every buffer: layout.STORAGE[precision]

    @property
    def output_buffer(self) -> int:
        return self.layer_buffers[-1]

    @property
    def buffer_bytes(self) -> tuple[int, ...]:
        """The size of each buffer in bytes."""
        return tuple(int(np.prod(shape)) * self.storage.itemsize for shape in self.buffer_shapes)


def build_plan(graph: Graph, batch: int, choose_variant: Callable[[ConvGeometry], Variant] | None = None,
               precision: str = "fp32") -> Plan:
    """The steps of `graph` at `batch`; each convolution runs the variant choose_variant gives its
    geometry (tuning.chooser: a tuned table's, else the rule's; by default the rule's for
    `precision`): a conv.cu variant as op "conv", a conv_pipelined.cu one as PIPELINED_OP. The
    buffers store what `precision` stores."""
    choose = choose_variant or (lambda geo: rule_choice(geo, precision))
    shapes = [nhwc(batch, graph.input_shape)]
    layer_buffers: list[int] = []
    steps: list[Step] = []
    current = 0
    for group in fuse(graph, FUSION_RULES):
        node = group[0]
        if node.kind in IDENTITY_KINDS:
            layer_buffers.append(current)
            continue
        op = FUSED_OPS[tuple(n.kind for n in group)] if len(group) > 1 else STEP_OPS.get(node.kind)
        if op is None:
            raise ValueError(f"the CUDA backend has no kernel for layer kind {node.kind}")
        # Every layer of a group gets its own buffer, so that run_layers returns each one.
        targets = tuple(range(len(shapes), len(shapes) + len(group)))
        shapes += [nhwc(batch, member.out_shape) for member in group]
        inputs = (current, *(layer_buffers[source] for source in node.sources))
        args = launch_args(op, group, batch)
        if isinstance(args, ConvGeometry):
            variant = choose(args)
            if isinstance(variant, PipelinedVariant):
                if precision != "fp16":  # its operands and outputs are fp16 buffers
                    raise ValueError(f"{variant.name} is a conv_pipelined.cu variant, for fp16 only, not {precision}")
                op, args = PIPELINED_OP, PipelinedGeometry(args, variant)
            else:
                args = replace(args, variant=variant)
        steps.append(Step(op, inputs, targets, group, args))
        layer_buffers += targets
        current = targets[-1]
    return Plan(batch, tuple(shapes), tuple(layer_buffers), tuple(steps), np.dtype(STORAGE[precision]))
