"""A roofline performance model of a network on a GPU, from the layer graph alone.

For each layer at a batch size and precision: the FLOPs (each layer's own `flops`, the rule
`tdn summary` prints as BFLOPs), the bytes it moves to and from device memory, and its roofline
time on a GPU (tdn/gpu_specs.py): max(FLOPs / peak FLOP/s, bytes / memory bandwidth). For the
network: the sum of those, plus the per-kernel launch cost of a replayed CUDA graph and the
host<->GPU copies, against the targets of issue 19.

Assumptions (each one a row a later design can move):

- Precisions. fp32: float32 FMA on CUDA cores. tf32, fp16: dense tensor cores (not 2:4 sparse).
  The precision's peak applies to the layers that have FLOPs (convolutional, connected: GEMMs);
  the others (pools, softmax, shortcut, route, crop) count no FLOPs, as Darknet's table does,
  and are memory-bound at any precision (a handful of operations per value moved).
- Bytes per value. Activations between layers: 4 bytes in fp32 and tf32 (tf32 is a float32 in
  memory), 2 in fp16 (the CUDA backend stores every activation buffer as float16 in fp16:
  backends/cuda/layout.py). Weights (the array named `weights` of a layer's folded arrays): 4
  bytes in fp32 and tf32, 2 in fp16 (the backend uploads conv and connected weights as float16
  in fp16). Biases and batch-norm scales: float32 in every precision (the epilogue is float32;
  so are the backend's standalone batch-norm scales).
- Compulsory traffic only. Each launch reads its inputs and its folded parameters once and
  writes its outputs once; nothing stays on chip between launches (no L2 reuse: at batch 1 the
  whole working set of Tiny Darknet fits in the H100's 50 MB L2, so there the memory times are
  pessimistic; at batch 256 it does not). A layer whose input is produced inside the same launch
  (softmax fused after avgpool) does not read it. Tiles re-reading weights or inputs, padding to
  whole tiles and im2col expansion are not counted: a kernel that moves more than this is slower
  than its row.
- Which layers launch a kernel is the caller's: `launches` groups node indices per launch (the
  CUDA backend's plan: one step per launch, avgpool+softmax fused, dropout and cost none).
  A layer in no launch computes nothing and moves nothing.
- Launch floor. Replaying the CUDA graph costs GRAPH_LAUNCH_S once and GRAPH_NODE_S for each
  kernel and each copy it holds; the host's wait for the stream (synchronize) is not counted.
- Transfer floor. The batch's input crosses PCIe once (float32 from Program.run, or uint8 from
  Program.run_pixels: decoded images whose preprocessing changes no value) and its output
  (float32 probabilities) once, at the link's one-way peak, one graph node each. (The backend's
  graph also holds one conversion kernel at each end, NHWC and float32 NCHW or uint8: two
  element-wise launches over the input and output, which this model does not count.)
- Predicted host-to-host time of one forward = graph launch + the layers' roofline times + one
  graph node per kernel + the two copies. Streamed, with each batch's copies overlapping its
  neighbours' kernels, the slowest of kernels, upload and download sets the pace.
- Everything runs at 100% of peak, so the predictions are lower bounds on time (upper bounds on
  images/s): a real kernel reaching 50-80% of its roofline is doing well, and at batch 1 a layer
  too small to fill the GPU's 132 SMs stays below its roofline whatever its code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod

from tdn.gpu_specs import GRAPH_LAUNCH_S, GRAPH_NODE_S, GpuSpec
from tdn.graph import Graph, Node

# Bytes per value of activations and of weights, per --precision.
ACTIVATION_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2}
WEIGHT_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2}
VECTOR_BYTES = 4  # biases and scales: float32 in every precision
OUTPUT_BYTES = 4  # the probabilities copied back: float32
INPUT_BYTES = {"float32": 4, "uint8": 1}  # the input as uploaded: by run, and by run_pixels
PRECISIONS = tuple(ACTIVATION_BYTES)

# Issue 19's targets.
TARGET_BATCH1_S = 50e-6  # batch-1 host-to-host
TARGET_IMAGES_PER_S = 200_000  # fp16, batch 256, H100


def values(shape: Sequence[int]) -> int:
    return prod(shape)


@dataclass(frozen=True)
class LayerCost:
    """One layer at one batch size and precision: its work and its traffic."""

    node: Node
    flops: float
    activation_bytes: float  # inputs read and outputs written, whole batch
    parameter_bytes: float  # folded weights and vectors, read once per batch
    starts_launch: bool  # False: it computes nothing (dropout, cost) or runs in an earlier layer's launch

    @property
    def bytes(self) -> float:
        return self.activation_bytes + self.parameter_bytes

    @property
    def intensity(self) -> float:
        """FLOPs per byte moved (0 for a layer moving nothing)."""
        return self.flops / self.bytes if self.bytes else 0.0

    def compute_s(self, gpu: GpuSpec, precision: str) -> float:
        return self.flops / gpu.peak_flops[precision]

    def memory_s(self, gpu: GpuSpec) -> float:
        return self.bytes / gpu.memory_bandwidth

    def roofline_s(self, gpu: GpuSpec, precision: str) -> float:
        return max(self.compute_s(gpu, precision), self.memory_s(gpu))

    def bound(self, gpu: GpuSpec, precision: str) -> str:
        if not self.bytes:
            return "-"
        return "compute" if self.compute_s(gpu, precision) > self.memory_s(gpu) else "memory"


def layer_costs(graph: Graph, batch: int, precision: str,
                launches: Sequence[Sequence[int]]) -> tuple[LayerCost, ...]:
    """Every layer's cost; `launches` lists the node indices each kernel launch computes."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    if precision not in ACTIVATION_BYTES:
        raise ValueError(f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})")
    launch_of = {index: number for number, group in enumerate(launches) for index in group}
    activation, weight = ACTIVATION_BYTES[precision], WEIGHT_BYTES[precision]
    costs = []
    for node in graph.nodes:
        if node.index not in launch_of:
            costs.append(LayerCost(node, 0.0, 0.0, 0.0, starts_launch=False))
            continue
        # Route and shortcut read the earlier layers they list; a route not the previous one's
        # output, a crop only the window it keeps, a layer fused after its producer nothing more.
        read = sum(values(graph.nodes[source].out_shape) for source in node.sources)
        if node.kind == "crop":
            read += values(node.out_shape)
        elif node.kind != "route" and launch_of.get(node.index - 1) != launch_of[node.index]:
            read += values(node.in_shape)
        parameters = sum(values(shape) * (weight if name == "weights" else VECTOR_BYTES)
                         for name, shape in node.layer.folded_layout(node.in_shape))
        costs.append(LayerCost(
            node,
            flops=batch * node.layer.flops(node.in_shape, node.out_shape),
            activation_bytes=float(batch * (read + values(node.out_shape)) * activation),
            parameter_bytes=float(parameters),
            starts_launch=node.index == min(launches[launch_of[node.index]])))
    return tuple(costs)


@dataclass(frozen=True)
class Prediction:
    """A network at one batch size and precision on one GPU."""

    graph: Graph
    batch: int
    precision: str
    gpu: GpuSpec
    layers: tuple[LayerCost, ...]

    @property
    def flops(self) -> float:
        return sum(layer.flops for layer in self.layers)

    @property
    def bytes(self) -> float:
        return sum(layer.bytes for layer in self.layers)

    @property
    def kernels(self) -> int:
        return sum(layer.starts_launch for layer in self.layers)

    @property
    def roofline_s(self) -> float:
        return sum(layer.roofline_s(self.gpu, self.precision) for layer in self.layers)

    @property
    def device_s(self) -> float:
        """The layers at their roofline, each kernel also paying its graph node."""
        return self.roofline_s + self.kernels * GRAPH_NODE_S

    @property
    def launch_floor_s(self) -> float:
        """Replaying the graph's kernels if each did no work."""
        return GRAPH_LAUNCH_S + self.kernels * GRAPH_NODE_S

    def input_bytes(self, upload: str) -> int:
        return self.batch * values(self.graph.input_shape) * INPUT_BYTES[upload]

    @property
    def output_bytes(self) -> int:
        return self.batch * values(self.graph.output_shape) * OUTPUT_BYTES

    def upload_s(self, upload: str) -> float:
        return GRAPH_NODE_S + self.input_bytes(upload) / self.gpu.host_link_bandwidth

    @property
    def download_s(self) -> float:
        return GRAPH_NODE_S + self.output_bytes / self.gpu.host_link_bandwidth

    def transfer_floor_s(self, upload: str) -> float:
        """The two copies at the host link's one-way peak, one graph node each."""
        return self.upload_s(upload) + self.download_s

    def host_to_host_s(self, upload: str) -> float:
        """One forward on its own: launch, copy in, every kernel, copy out."""
        return GRAPH_LAUNCH_S + self.device_s + self.transfer_floor_s(upload)

    def images_per_s(self, upload: str) -> float:
        return self.batch / self.host_to_host_s(upload)

    def streamed_images_per_s(self, upload: str) -> float:
        """Batches back to back, each one's copies overlapping its neighbours' kernels (a copy
        engine per direction): the slowest of the three streams sets the pace."""
        return self.batch / max(self.device_s, self.upload_s(upload), self.download_s)

    def dominant(self) -> LayerCost:
        """The layer with the largest roofline time: the row a design should move first."""
        return max(self.layers, key=lambda layer: layer.roofline_s(self.gpu, self.precision))


def predict(graph: Graph, batch: int, precision: str, gpu: GpuSpec,
            launches: Sequence[Sequence[int]]) -> Prediction:
    return Prediction(graph, batch, precision, gpu, layer_costs(graph, batch, precision, launches))


__all__ = ["LayerCost", "PRECISIONS", "Prediction", "layer_costs", "predict"]
