"""Winograd F(m x m, r x r) convolution (Lavin & Gray, 2015) as three BLAS matmuls.

An r x r stride-1 convolution computed on a x a input tiles, a = m + r - 1, needs a^2 products
per output tile instead of r^2 m^2: for 3x3, 2.25x fewer with m=2 and 4x fewer with m=4; for
5x5 (AlexNet's second layer), 2.8x fewer with m=2. Each step is a matmul
so that BLAS runs it on every core: the input and output transforms are the Kronecker
products of the 1-D transforms applied to all tiles at once, and the per-tile products are
one batched matmul over the a^2 tile positions. Layout is NHWC throughout.

Accuracy: F(2x2, 3x3) adds at most a few ulps; F(4x4, 3x3) and F(2x2, 5x5) interpolate at the
same six points (0, +-1, +-2 and infinity), with constants up to 8, and lose about one more
decimal digit, still far inside the backend's 1e-4 bound on probabilities.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

# The 1-D transforms (input B^T, kernel G, output A^T) for each output tile size m and kernel
# size r. B^T depends only on the interpolation points: F(4, 3) and F(2, 5) share theirs.
_SIX_POINTS = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
_TRANSFORMS = {
    (2, 3): (
        [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]],
    ),
    (4, 3): (
        _SIX_POINTS,
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
         [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    ),
    (2, 5): (
        _SIX_POINTS,
        # Row j: the powers of point j over the product of its differences to the other points.
        [[1 / 4, 0, 0, 0, 0], [-1 / 6, -1 / 6, -1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6, 1 / 6, -1 / 6],
         [1 / 24, 1 / 12, 1 / 6, 1 / 3, 2 / 3], [1 / 24, -1 / 12, 1 / 6, -1 / 3, 2 / 3], [0, 0, 0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 1]],
    ),
}
SEPARABLE = frozenset({(4, 3), (2, 5)})  # whose 2-D transforms run as two 1-D passes (six points: measured faster)


def transform_kernel(weights: np.ndarray, m: int) -> np.ndarray:
    """(filters, c, r, r) -> U, (a*a, c, filters) with U[i*a+j] = (G w G^T)[i, j], a = m + r - 1."""
    filters, c, r = weights.shape[:3]
    g = np.array(_TRANSFORMS[m, r][1], np.float64)
    u = np.einsum("ik,fckl,jl->ijcf", g, weights.astype(np.float64), g)
    return np.ascontiguousarray(u.reshape((m + r - 1) ** 2, c, filters), np.float32)


class WinogradConv:
    """One r x r, stride-1 convolution padded by (r - 1) / 2, at one batch and input size.

    `padded_input` is the (n, tiles_h*m + r - 1, tiles_w*m + r - 1, c) buffer this layer reads:
    the producer writes the image into [:, p:h+p, p:w+p], p = (r - 1) / 2, and the rest stays zero. run() returns
    the output plus bias as an (n, tiles_h*m, tiles_w*m, filters) array; [:, :h, :w] is valid.

    A caller that splits a layer into bands of tile rows passes each band its rows of a shared
    padded input (`padded_input`) and the kernel transformed once (`kernel`, from transform_kernel).
    `allocate` (shape -> float32 array) gives the working buffers, e.g. from memory that layers
    running one after another share (default: new arrays). The result shares memory with the
    working buffers: it holds until the next run.
    """

    def __init__(self, weights: np.ndarray, n: int, h: int, w: int, m: int, *,
                 padded_input: np.ndarray | None = None, kernel: np.ndarray | None = None,
                 allocate: Callable[[tuple[int, ...]], np.ndarray] | None = None):
        filters, c, r = weights.shape[:3]
        bt, _, at = (np.array(t, np.float64) for t in _TRANSFORMS[m, r])
        a = m + r - 1
        self.m, self.a, self.n, self.c, self.filters = m, a, n, c, filters
        self.tiles_h, self.tiles_w = -(-h // m), -(-w // m)
        tiles = n * self.tiles_h * self.tiles_w
        self.kernel = transform_kernel(weights, m) if kernel is None else kernel
        # F(4x4, 3x3): the 2-D transforms as two passes of the 1-D ones (a matmul per axis) do a
        # third of the Kronecker product's arithmetic and measured faster; for F(2x2, 3x3) the Kronecker won.
        self.separable = (m, r) in SEPARABLE
        self.bt, self.at = bt.astype(np.float32), at.astype(np.float32)
        self.input_transform = np.kron(bt, bt).astype(np.float32)  # (a*a, a*a)
        self.output_transform = np.kron(at, at).astype(np.float32)  # (m*m, a*a)
        shape = (n, self.tiles_h * m + r - 1, self.tiles_w * m + r - 1, c)
        if padded_input is None:
            padded_input = np.zeros(shape, np.float32)
        elif padded_input.shape != shape:
            raise ValueError(f"padded_input has shape {padded_input.shape}, this layer reads {shape}")
        self.padded_input = padded_input
        # Two regions, each buffer placed where nothing it overlaps is still needed: the products,
        # then the output transform over them; the tiles and their transform, then the half-way
        # output transform and the result over those. Less memory to keep in cache.
        new = allocate or (lambda shape: np.empty(shape, np.float32))
        products = new((a * a * tiles * filters,))
        front = new((max(2 * a * a * tiles * c, m * a * tiles * filters, m * m * tiles * filters),))
        self._products = products.reshape(a * a, tiles, filters)
        self._output = products[:m * m * tiles * filters].reshape(m * m, tiles * filters)
        self._tiles = front[:a * a * tiles * c].reshape(a * a, tiles * c)
        self._transformed = front[a * a * tiles * c:2 * a * a * tiles * c].reshape(a * a, tiles * c)
        self._half = front[:m * a * tiles * filters].reshape(m, a * tiles * filters) if self.separable else None
        self.result = front[:m * m * tiles * filters].reshape(n, self.tiles_h * m, self.tiles_w * m, filters)
        # Every run's views, made once: building them costs microseconds per call, per band.
        th, tw = self.tiles_h, self.tiles_w
        sn, sh, sw, sc = padded_input.strides
        # Overlapping (a x a) tiles at stride m, gathered tile position first.
        self._windows = as_strided(padded_input, (a, a, n, th, tw, c), (sh, sw, sn, m * sh, m * sw, sc),
                                   writeable=False)
        self._tiles_gathered = self._tiles.reshape(a, a, n, th, tw, c)
        self._tiles_rows, self._tiles_grid = self._tiles.reshape(a, -1), self._tiles.reshape(a, a, -1)
        self._transformed_rows = self._transformed.reshape(a, -1)
        self._transformed_grid = self._transformed.reshape(a, a, -1)
        transformed = self._tiles if self.separable else self._transformed
        self._product_inputs = transformed.reshape(a * a, -1, c)
        self._products_rows = self._products.reshape(a, -1)
        self._products_flat = self._products.reshape(a * a, -1)
        self._half_grid = self._half.reshape(m, a, -1) if self._half is not None else None
        self._output_grid = self._output.reshape(m, m, -1)

    @property
    def buffers(self) -> list[np.ndarray]:
        return [b for b in (self.kernel, self.padded_input, self._tiles, self._transformed, self._products,
                            self._half, self._output, self.result) if b is not None]

    @property
    def products(self) -> np.ndarray:
        """(a*a, tiles, filters): where transformed_products writes by default."""
        return self._products

    @property
    def output(self) -> np.ndarray:
        """(m*m, tiles*filters): where transform_output writes."""
        return self._output

    def transformed_products(self, out: np.ndarray | None = None) -> np.ndarray:
        """Gather, input transform and the products per tile position: (a*a, tiles, filters).

        Written into `out` when given (a caller that does its own output transform).
        """
        np.copyto(self._tiles_gathered, self._windows)
        if self.separable:  # B^T along the tile rows, then along the columns, back into _tiles
            np.matmul(self.bt, self._tiles_rows, out=self._transformed_rows)
            np.matmul(self.bt, self._transformed_grid, out=self._tiles_grid)
        else:
            np.matmul(self.input_transform, self._tiles, out=self._transformed)
        out = self._products if out is None else out
        np.matmul(self._product_inputs, self.kernel, out=out)
        return out

    def output_transform_into(self, products: np.ndarray, out: np.ndarray) -> None:
        """A^T P A for every tile and filter: products (a*a, X) -> out (m*m, X), position-major."""
        m, a = self.m, self.a
        if self.separable:
            assert self._half is not None  # allocated for the separable transforms
            np.matmul(self.at, products.reshape(a, -1), out=self._half)
            np.matmul(self.at, self._half.reshape(m, a, -1), out=out.reshape(m, m, -1))
        else:
            np.matmul(self.output_transform, products, out=out)

    def transform_output(self) -> np.ndarray:
        """output_transform_into from this layer's products to its (m*m, tiles*filters) output buffer."""
        if self._half_grid is not None:
            np.matmul(self.at, self._products_rows, out=self._half)
            np.matmul(self.at, self._half_grid, out=self._output_grid)
        else:
            np.matmul(self.output_transform, self._products_flat, out=self._output)
        return self._output

    def run(self, bias: np.ndarray) -> np.ndarray:
        m, a, n, th, tw = self.m, self.a, self.n, self.tiles_h, self.tiles_w
        self.transformed_products()
        self.output_transform_into(self._products.reshape(a * a, -1), self._output)
        # (m, m, n, th, tw, f) -> (n, th, m, tw, m, f) = (n, th*m, tw*m, f), bias added on the way.
        y = self._output.reshape(m, m, n, th, tw, self.filters).transpose(2, 3, 0, 4, 1, 5)
        np.add(y, bias, out=self.result.reshape(n, th, m, tw, m, self.filters))
        return self.result
