"""[convolutional]: Darknet's convolutional_layer.c, with batch-norm folded for inference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tdn.activations import ACTIVATIONS
from tdn.cfg import Section
from tdn.layers.base import Layer, Shape, ShapeError, Source

# normalize_cpu divides by sqrt(variance) + .000001f: the epsilon goes after the root.
BATCHNORM_EPSILON = np.float32(1e-6)


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def fold_batchnorm(weights: np.ndarray, biases: np.ndarray, scales: np.ndarray,
                   mean: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fold y = scale*(x - mean)/(sqrt(var) + eps) + bias into the weights and bias."""
    factor = scales / (np.sqrt(variance) + BATCHNORM_EPSILON)
    folded = weights * factor.reshape((-1,) + (1,) * (weights.ndim - 1))
    return folded.astype(np.float32), (biases - mean * factor).astype(np.float32)


# What fold_layer_batchnorm leaves of a convolutional or connected layer's arrays.
FOLDED_ARRAYS = ("weights", "biases")


def fold_layer_batchnorm(raw: dict[str, np.ndarray], batch_normalize: bool) -> dict[str, np.ndarray]:
    """A convolutional or connected layer's arrays as stored -> its weights and biases."""
    if not batch_normalize:
        return {name: raw[name] for name in FOLDED_ARRAYS}
    weights, biases = fold_batchnorm(raw["weights"], raw["biases"], raw["scales"],
                                     raw["rolling_mean"], raw["rolling_variance"])
    return {"weights": weights, "biases": biases}


@dataclass(frozen=True)
class Convolutional(Layer):
    kind = "convolutional"
    resizable = True

    filters: int
    size: int
    stride: int
    padding: int
    groups: int
    batch_normalize: bool
    activation: str

    @classmethod
    def from_section(cls, section: Section) -> Convolutional:
        size = section.int("size", 1, minimum=1)
        pad = section.flag("pad")
        padding = section.int("padding", 0, minimum=0)
        for key in ("binary", "xnor"):
            section.forbid(key, "binary (XNOR) convolutions are not supported")
        section.forbid("flipped", "flipped weights are not supported")
        section.accept("dot", "stopbackward", "learning_rate")
        return cls(
            filters=section.int("filters", 1, minimum=1),
            size=size,
            stride=section.int("stride", 1, minimum=1),
            # Darknet: pad=1 overrides padding with size/2.
            padding=size // 2 if pad else padding,
            groups=section.int("groups", 1, minimum=1),
            batch_normalize=section.flag("batch_normalize"),
            # Darknet's default activation for convolutions is logistic.
            activation=section.choice("activation", "logistic", ACTIVATIONS),
        )

    def output_shape(self, in_shape: Shape, sources: tuple[Source, ...] = ()) -> Shape:
        channels, height, width = in_shape
        if channels % self.groups or self.filters % self.groups:
            raise ShapeError(f"groups={self.groups} must divide the {channels} input channels "
                             f"and the {self.filters} filters")
        out_h = conv_out(height, self.size, self.stride, self.padding)
        out_w = conv_out(width, self.size, self.stride, self.padding)
        if out_h < 1 or out_w < 1:
            raise ShapeError(f"a {self.size}x{self.size} kernel with padding {self.padding} "
                             f"does not fit the {height}x{width} input")
        return (self.filters, out_h, out_w)

    def weight_layout(self, in_shape: Shape) -> list[tuple[str, tuple[int, ...]]]:
        n = self.filters
        layout: list[tuple[str, tuple[int, ...]]] = [("biases", (n,))]
        if self.batch_normalize:
            layout += [("scales", (n,)), ("rolling_mean", (n,)), ("rolling_variance", (n,))]
        layout.append(("weights", (n, in_shape[0] // self.groups, self.size, self.size)))
        return layout

    def fold(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return fold_layer_batchnorm(raw, self.batch_normalize)

    def folded_layout(self, in_shape: Shape) -> list[tuple[str, tuple[int, ...]]]:
        return [(name, shape) for name, shape in self.weight_layout(in_shape) if name in FOLDED_ARRAYS]

    def describe(self, in_shape: Shape, out_shape: Shape, sources: tuple[Source, ...] = ()) -> str:
        c, h, w = in_shape
        n, oh, ow = out_shape
        return (f"conv  {n:5d} {self.size:2d} x{self.size:2d} /{self.stride:2d}  "
                f"{w:4d} x{h:4d} x{c:4d}   ->  {ow:4d} x{oh:4d} x{n:4d}  "
                f"{self.flops(in_shape, out_shape) / 1e9:5.3f} BFLOPs")

    def flops(self, in_shape: Shape, out_shape: Shape) -> float:
        n, oh, ow = out_shape
        return 2.0 * n * self.size * self.size * (in_shape[0] // self.groups) * oh * ow
