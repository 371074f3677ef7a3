"""The numpy plan's convolution algorithms: what each needs and how it lays out its operands.

An algorithm is stateless; the plan (plan.py) holds one per convolution, chosen by shape
(`choose`) or forced by name (`BY_NAME`, for tests). Each says whether it can run a layer, how
many output rows it computes together, how its input is padded, and how it lays out the weights
for its matmuls (made once per plan).
"""

from __future__ import annotations

import numpy as np
from tdn.backends.numpy.winograd import transform_kernel

from tdn.graph import Node
from tdn.layers.convolutional import Convolutional

Shape = tuple[int, ...]


class Algorithm:
    name = ""
    tile = 1  # output rows computed together
    layout = "nhwc"  # how it reads its input

    def refusal(self, node: Node) -> str | None:
        """Why it cannot compute this convolution; None when it can."""
        return None

    def weights(self, weights: np.ndarray) -> np.ndarray | None:
        """The weights (filters, c, k, k) in its own layout (None: it uses them as they are)."""
        return None

    def padded_shape(self, node: Node, n: int) -> Shape | None:
        """The zero-padded input buffer it reads (None: it reads its input as given)."""
        return None

    def rows(self, node: Node) -> int:
        """Rows of its matmuls per image: output pixels (tiles for Winograd)."""
        _, oh, ow = node.out_shape
        return oh * ow

    def interior(self, padded: np.ndarray, node: Node) -> np.ndarray:
        """Where the producer writes in the padded buffer."""
        p = node.layer_as(Convolutional).padding
        _, h, w = node.in_shape
        return padded[:, p:p + h, p:p + w]

    def __repr__(self) -> str:
        return self.name


def _window_span(node: Node) -> tuple[int, int]:
    """Rows and columns of padded input that the windows cover."""
    layer = node.layer_as(Convolutional)
    _, h, w = node.in_shape
    _, oh, ow = node.out_shape
    k, p, s = layer.size, layer.padding, layer.stride
    return max(h + 2 * p, (oh - 1) * s + k), max(w + 2 * p, (ow - 1) * s + k)


class Gemm(Algorithm):
    """A 1x1, stride 1, unpadded convolution: one (pixels x c) @ (c x filters) matmul."""

    name = "gemm"

    def refusal(self, node: Node) -> str | None:
        layer = node.layer_as(Convolutional)
        if (layer.size, layer.stride, layer.padding) != (1, 1, 0):
            return "gemm needs a 1x1, stride 1, unpadded convolution"
        return None

    def weights(self, weights: np.ndarray) -> np.ndarray:
        # (filters, c, k, k) -> (k*k*c, filters), matching the NHWC column order.
        return np.ascontiguousarray(weights.transpose(2, 3, 1, 0).reshape(-1, weights.shape[0]))


class Im2col(Gemm):
    """Windows gathered from the padded NHWC input into columns, then one matmul."""

    name = "im2col"

    def refusal(self, node: Node) -> str | None:
        return None

    def padded_shape(self, node: Node, n: int) -> Shape:
        return (n, *_window_span(node), node.in_shape[0])


class Nchw(Algorithm):
    """The first layer on the image as it comes (NCHW): im2col copies whole image rows."""

    name = "nchw"
    layout = "nchw"

    def refusal(self, node: Node) -> str | None:
        return None if node.index == 0 else "nchw reads the image, only the first layer can use it"

    def weights(self, weights: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(weights.reshape(weights.shape[0], -1).T)  # (c*k*k, filters)

    def padded_shape(self, node: Node, n: int) -> Shape:
        return (n, node.in_shape[0], *_window_span(node))

    def interior(self, padded: np.ndarray, node: Node) -> np.ndarray:
        p = node.layer_as(Convolutional).padding
        _, h, w = node.in_shape
        return padded[:, :, p:p + h, p:p + w]


class Winograd(Algorithm):
    """F(m x m, r x r) on m x m output tiles (winograd.py)."""

    def __init__(self, m: int, r: int = 3):
        self.m = self.tile = m
        self.r = r
        self.name = f"winograd{m}" if r == 3 else f"winograd{m}-{r}x{r}"

    def refusal(self, node: Node) -> str | None:
        layer = node.layer_as(Convolutional)
        r = self.r
        if (layer.size, layer.stride, layer.padding) != (r, 1, (r - 1) // 2):
            return f"{self.name} needs a {r}x{r}, stride 1, pad {(r - 1) // 2} convolution"
        return None

    def weights(self, weights: np.ndarray) -> np.ndarray:
        return transform_kernel(weights, self.m)

    def rows(self, node: Node) -> int:
        _, oh, ow = node.out_shape
        return _tiles(oh, ow, self.m)

    def padded_shape(self, node: Node, n: int) -> Shape:
        c, h, w = node.in_shape
        return (n, -(-h // self.m) * self.m + self.r - 1, -(-w // self.m) * self.m + self.r - 1, c)


class Plain(Algorithm):
    """Grouped convolutions: the plain NCHW path (convolution.py) on a transposed copy."""

    name = "plain"


GEMM, IM2COL, NCHW, PLAIN = Gemm(), Im2col(), Nchw(), Plain()
WINOGRAD2, WINOGRAD4, WINOGRAD2_5X5 = Winograd(2), Winograd(4), Winograd(2, 5)
BY_NAME: dict[str, Algorithm] = {a.name: a for a in (GEMM, IM2COL, NCHW, WINOGRAD2, WINOGRAD4, WINOGRAD2_5X5, PLAIN)}


# Tiles per pass that a Winograd tile size needs (measured on Darknet19's and darknet.cfg's
# 16x16, 8x8 and 4x4 layers, one core: F(2x2) from 8x8 maps, F(4x4) from about 24x24).
MIN_TILES = {4: 32, 2: 16}


def _tiles(h: int, w: int, m: int) -> int:
    return -(-h // m) * -(-w // m)


def choose(node: Node, images: int = 1) -> Algorithm:
    """The convolution algorithm for a node, by shape (measured on Tiny Darknet's layers) and by
    the images multiplied together (a plan's pass): their tiles share each read of the kernel."""
    layer = node.layer_as(Convolutional)
    channels, _, _ = node.in_shape
    _, out_h, out_w = node.out_shape
    if layer.groups != 1:
        return PLAIN
    if layer.size == 1 and layer.stride == 1 and layer.padding == 0:
        return GEMM
    if layer.size == 3 and layer.stride == 1 and layer.padding == 1 and channels >= 16:
        # F(4x4) saves the most arithmetic, but its transformed kernel is 4x the weights (1.8x for
        # F(2x2)), read once per pass: with few tiles its matmuls wait on that read. Its tiles
        # also overhang maps that are not multiples of 4: on 14x14 (15% or more waste), F(2x2) won.
        overhang = (-(-out_h // 4) * 4) * (-(-out_w // 4) * 4) / (out_h * out_w)
        if overhang < 1.15 and images * _tiles(out_h, out_w, 4) >= MIN_TILES[4]:
            return WINOGRAD4
        if images * _tiles(out_h, out_w, 2) >= MIN_TILES[2]:
            return WINOGRAD2
    if layer.size == 5 and layer.stride == 1 and layer.padding == 2 and channels >= 16:
        # F(2x2, 5x5): 36 products per tile instead of 100 (AlexNet's 27x27 layer, one core:
        # measured 1.7-1.9x faster than im2col).
        if images * _tiles(out_h, out_w, 2) >= MIN_TILES[2]:
            return WINOGRAD2_5X5
    # The first layer reads the image as it comes, NCHW: im2col then copies whole rows.
    return NCHW if node.index == 0 else IM2COL
