"""[connected]: Darknet's connected_layer.c, a fully connected layer over the flattened input.

Options: output (default 1), activation (default logistic), batch_normalize.
Shape: C x H x W -> output x 1 x 1; the input is read as one C*H*W vector in CHW order.
Weights, in file order: biases[output], weights[output][inputs] (stored [inputs][output]
when the header's major or minor is above 1000), then with batch_normalize scales,
rolling_mean, rolling_variance [output] each.
Darknet cannot resize it: a network with a connected layer before its avgpool runs only at
its cfg's input size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tdn.activations import ACTIVATIONS
from tdn.cfg import Section
from tdn.layers.base import Layer, Shape, Source
from tdn.layers.convolutional import FOLDED_ARRAYS, fold_layer_batchnorm


@dataclass(frozen=True)
class Connected(Layer):
    kind = "connected"
    transposed_when_flagged = ("weights",)

    outputs: int
    batch_normalize: bool
    activation: str

    @classmethod
    def from_section(cls, section: Section) -> Connected:
        section.accept("learning_rate", "stopbackward", "dontload", "dontloadscales")
        return cls(
            outputs=section.int("output", 1, minimum=1),
            batch_normalize=section.flag("batch_normalize"),
            # Darknet's default activation for connected layers is logistic.
            activation=section.choice("activation", "logistic", ACTIVATIONS),
        )

    def output_shape(self, in_shape: Shape, sources: tuple[Source, ...] = ()) -> Shape:
        return (self.outputs, 1, 1)

    def weight_layout(self, in_shape: Shape) -> list[tuple[str, tuple[int, ...]]]:
        n, inputs = self.outputs, int(np.prod(in_shape))
        layout: list[tuple[str, tuple[int, ...]]] = [("biases", (n,)), ("weights", (n, inputs))]
        if self.batch_normalize:
            layout += [("scales", (n,)), ("rolling_mean", (n,)), ("rolling_variance", (n,))]
        return layout

    def fold(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return fold_layer_batchnorm(raw, self.batch_normalize)

    def folded_layout(self, in_shape: Shape) -> list[tuple[str, tuple[int, ...]]]:
        return [(name, shape) for name, shape in self.weight_layout(in_shape) if name in FOLDED_ARRAYS]

    def describe(self, in_shape: Shape, out_shape: Shape, sources: tuple[Source, ...] = ()) -> str:
        # Darknet's table gives a connected layer no BFLOPs figure (its `ops` count does).
        return f"connected                            {int(np.prod(in_shape)):4d}  ->  {self.outputs:4d}"

    def flops(self, in_shape: Shape, out_shape: Shape) -> float:
        return 2.0 * int(np.prod(in_shape)) * self.outputs


def weights_in_hwc_order(weights: np.ndarray, in_shape: Shape, inputs_first: bool = False) -> np.ndarray:
    """(outputs, C*H*W) with inputs in Darknet's CHW order -> the same weights with inputs in HWC
    order, for backends that keep activations NHWC and read a connected layer's input flat; as
    (H*W*C, outputs) when `inputs_first` (for x @ weights). One contiguous copy either way."""
    c, h, w = in_shape
    outputs = weights.shape[0]
    if weights.shape != (outputs, c * h * w):
        raise ValueError(f"connected weights have shape {weights.shape}, expected ({outputs}, {c * h * w})")
    hwc = weights.reshape(outputs, c, h, w).transpose(0, 2, 3, 1)
    if inputs_first:
        return np.ascontiguousarray(hwc.transpose(1, 2, 3, 0)).reshape(h * w * c, outputs)
    return np.ascontiguousarray(hwc).reshape(outputs, h * w * c)
