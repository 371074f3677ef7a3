"""The fast NumPy path: an execution plan per (network, batch, input size), and its executor.

`Plan` holds the decisions, made once and immutable (fused groups, algorithms, how each step's
work is split, images per pass, lanes); `Executor` allocates a plan's buffers and steps and runs
them on a team.

The plan works in NHWC so that every convolution is one (pixels x inputs) @ (inputs x filters)
matmul, picks an algorithm per convolution by its shape, and allocates every buffer once:
a producer writes straight into the zero-padded input of the next convolution, and a max
pool after a convolution runs on the raw matmul output, before bias and activation (both
commute with max when the activation never decreases), so they touch a quarter of the data.
The first convolution reads the image in NCHW, where its im2col copies whole rows. Which
layers run as one step is tdn/fusion.py's decision; each group of layers becomes the step that
STEPS names for its first layer's kind (shortcuts, connected layers and the NHWC convolutions
here; route, crop, upsample and batch norm through the plain path's functions), and a step that
reads earlier layers (route, shortcut) reads their outputs where their producers left them.

Every core works, each member of a team (team.py: threads, or forked processes when the
Network's pool, workers.py, is in "processes" mode) running BLAS single-threaded: at batch 1
each convolution's output rows are cut into bands (two per core; a short map with many filters
is cut by filters instead), every band runs its whole pipeline (gather, matmuls, pool, bias,
activation) as one task, each member runs its share of a phase's bands, and the members meet
only between phases: a 1x1 convolution runs in the band of the layer before it, which wrote
exactly its rows. At batch > 1 each core runs its share of the images through its own copy of
the plan (a lane), band after band. Images go one at a time so that every buffer stays in
cache. With threads, the network's weight-bound end (connected layers, many filters on small
maps: WEIGHT_BOUND_ROWS) then runs once on the whole batch, every member computing a share of
each layer's filters (the plan's `tail`), so that the batch shares each read of the weights and
the algorithm is chosen by the batch's tiles. A connected layer's outputs are split between the
members wherever they share a step. A linear 1x1 convolution before the global average pool
runs on the averaged pixel (both are linear).

Accuracy contract (tested): probabilities within 1e-4 relative of the plain `numpy` path.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from tdn.backends.numpy.activations import activate
from tdn.backends.numpy.algorithms import BY_NAME, GEMM, IM2COL, NCHW, PLAIN, Algorithm, Winograd, choose
from tdn.backends.numpy.convolution import convolve
from tdn.backends.numpy.cores import available_cores
from tdn.backends.numpy.layer_table import FAST
from tdn.backends.numpy.memory import large_page_zeros, shared_zeros
from tdn.backends.numpy.softmax import softmax
from tdn.backends.numpy.team import BLAS, ProcessTeam, TeamError, ThreadTeam
from tdn.backends.numpy.winograd import WinogradConv
from tdn.backends.numpy.workers import Workers

from tdn.backend import LayerParams, Program
from tdn.fusion import CONV_AVGPOOL, CONV_MAXPOOL, IDENTITY_KINDS, Group, Rule
from tdn.fusion import fuse as fuse_groups
from tdn.graph import Graph, Node
from tdn.layers.connected import Connected, weights_in_hwc_order
from tdn.layers.convolutional import Convolutional
from tdn.layers.maxpool import Maxpool
from tdn.layers.shortcut import Shortcut
from tdn.layers.softmax import Softmax

BANDS_PER_THREAD = 2  # row bands per thread at batch 1: a thread that another process holds up leaves work to claim
ROWS_PER_BAND = 64  # convolution output rows per band at most (the first layer: 4 bands, measured 20% faster)
MIN_ROWS_PER_BAND = 8  # convolution output rows per band at least, except for one band per thread
MIN_BANDS = 2  # even on one thread: a band's intermediates stay in cache, measured 3-5% faster
# At batch 1, a layer whose map is too short for row bands is split by filters when every member
# gets this many (a 7x7 to 14x14 map with 512-1024 filters: weights dominate the work).
MIN_FILTERS_PER_BAND = 128
CHUNK = 1  # images per pass: measured, more images per pass leave the caches and run slower...
# ...except where a heavy layer (2% of the work or more) multiplies fewer rows than this per image
# (maps of 8x8 and less): it reads all its weights for a few rows, and SMALL_MAPS_CHUNK images per
# pass share that read (measured on Darknet19 at batch 8: 0.70x the time of one image per pass).
MIN_ROWS_PER_PASS = 32
SMALL_MAPS_CHUNK = 4
# A process team costs a fork once per plan and a process while the plan lives: worth it for runs
# this long (Tiny Darknet 224x224 is 0.98 GFLOP an image); shorter ones use threads.
MIN_PROCESS_FLOPS = 1e8
# At batch > 1 in threads, the end of a network where every layer with weights is weight-bound
# (connected layers; convolutions whose matmuls have no more rows than this per image and whose
# weights outnumber the image's input and output there) runs once on the whole batch, its work
# split between the members by filters, instead of per image in lanes: per image each matmul
# reads all its weights for a few rows (AlexNet's connected layers: 150 MB for one image), and
# the whole batch shares that read (one core, 9216 x 4096 weights: 12.6 ms an image one at a
# time, 1.5 ms at 32 together). Layers with few weights stay per image, in cache.
WEIGHT_BOUND_ROWS = 64

def maxpool_nhwc(x: np.ndarray, size: int, stride: int, padding: int, out: np.ndarray,
                 scratch: np.ndarray | None) -> None:
    """Darknet's max pool on (n, h, w, c) into out (n, oh, ow, c); cells outside never win."""
    _, h, w, _ = x.shape
    _, oh, ow, _ = out.shape
    if scratch is not None:
        before = padding // 2
        scratch.fill(np.finfo(np.float32).min)  # -FLT_MAX: Darknet's empty-window value
        rows, cols = min(h, scratch.shape[1] - before), min(w, scratch.shape[2] - before)
        scratch[:, before:before + rows, before:before + cols] = x[:, :rows, :cols]
        x = scratch
    span_h, span_w = (oh - 1) * stride + 1, (ow - 1) * stride + 1
    np.copyto(out, x[:, 0:span_h:stride, 0:span_w:stride])
    for i in range(size):
        for j in range(size):
            if i or j:
                np.maximum(out, x[:, i:i + span_h:stride, j:j + span_w:stride], out=out)


def _pool_scratch(n: int, in_shape, node: Node,
                  take: Callable[[tuple[int, ...]], np.ndarray] | None = None) -> np.ndarray | None:
    """A -FLT_MAX padded copy of the input, needed only when a window leaves the input."""
    layer = node.layer_as(Maxpool)
    c, h, w = in_shape
    _, oh, ow = node.out_shape
    need_h, need_w = (oh - 1) * layer.stride + layer.size, (ow - 1) * layer.stride + layer.size
    if layer.padding // 2 == 0 and need_h <= h and need_w <= w:
        return None
    return (take or (lambda shape: np.empty(shape, np.float32)))((n, need_h, need_w, c))


class _Arena:
    """Working memory that bands running one after another share, one slot per band index.

    Bands of one phase run at once and take different slots; the bands of later phases reuse the
    same memory, so a plan's working set stays in cache instead of streaming through every layer's
    own buffers. `sizes`: floats per slot (a first build finds them: `need`, and `fits` when
    every request fitted; one that did not got a new array of its own).
    """

    ALIGN = 16  # floats: every buffer starts on a 64-byte cache line

    def __init__(self, sizes: dict[int, int] | None = None):
        starts = np.cumsum([0] + [self._aligned(size) for size in (sizes or {}).values()])
        self.block = large_page_zeros(int(starts[-1]))
        self.memory = {slot: self.block[start:start + size]
                       for (slot, size), start in zip((sizes or {}).items(), starts, strict=False)}
        self.need: dict[int, int] = {}
        self.fits = True

    def allocator(self, slot: int) -> Callable[[tuple[int, ...]], np.ndarray]:
        """shape -> a new float32 buffer in `slot`, after the buffers this allocator gave before."""
        offset = 0

        def take(shape: tuple[int, ...]) -> np.ndarray:
            nonlocal offset
            start, end = offset, offset + int(np.prod(shape))
            self.need[slot] = max(self.need.get(slot, 0), end)
            offset = self._aligned(end)
            memory = self.memory.get(slot)
            if memory is None or end > memory.size:
                self.fits = False
                return np.empty(shape, np.float32)
            return memory[start:end].reshape(shape)
        return take

    def _aligned(self, floats: int) -> int:
        return -(-floats // self.ALIGN) * self.ALIGN

    def nbytes(self) -> int:
        return self.block.nbytes


class _Memory:
    """Where a plan's steps get their arrays.

    `zeros` (shape -> zeroed float32 array): the buffers that steps pass between them, in shared
    memory when the members of a process team split each step's bands. `derived`: arrays made
    from the weights (transposed matrices, Winograd kernels), made once for a plan and its lanes:
    every core then reads one copy through the shared cache (measured 13% faster at batch 32).
    """

    def __init__(self, shared: bool, derived: dict[tuple[int, str], np.ndarray]):
        self.shared, self.derived_arrays = shared, derived

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return shared_zeros(shape) if self.shared else np.zeros(shape, np.float32)

    def derived(self, node: Node, what: str, make: Callable[[], np.ndarray]) -> np.ndarray:
        key = (node.index, what)
        if key not in self.derived_arrays:
            self.derived_arrays[key] = make()
        return self.derived_arrays[key]


def _split(units: int, parts: int) -> list[tuple[int, int]]:
    """[0, units) cut into at most `parts` non-empty, nearly equal ranges."""
    parts = max(1, min(parts, units))
    bounds = [units * k // parts for k in range(parts + 1)]
    return list(zip(bounds, bounds[1:], strict=False))


class _Step:
    """One step of a plan, run as one task per band (`tasks`, set by bind).

    `input` is where the producer must write, (n, h, w, c) (None: the plan allocates it).
    """

    input: np.ndarray | None = None
    sources: tuple[np.ndarray, ...] = ()  # the outputs (NHWC) of the first node's Node.sources
    layout = "nhwc"
    arena: _Arena | None = None  # set by the plan before bind: bands' working memory
    shared_slot = False  # True when the plan runs every band on one thread: all bands use slot 0

    def __init__(self, nodes: tuple[Node, ...], n: int):
        self.nodes, self.n = nodes, n
        self.buffers: list[np.ndarray] = []
        self.tasks: list[Callable[[], None]] = []

    def bind(self, x: np.ndarray, out: np.ndarray, parts: int) -> None:
        """Read x, write out, in at most `parts` bands."""
        self.x, self.out = x, out
        self.tasks = [self.run]

    def run(self) -> None:
        raise NotImplementedError


def _activate_into(y: np.ndarray, name: str, out: np.ndarray, temp: np.ndarray | None) -> None:
    if name == "leaky":
        assert temp is not None  # a leaky activation's band allocates temp
        np.multiply(y, np.float32(0.1), out=temp)
        np.maximum(y, temp, out=out)
    elif name == "relu":
        np.maximum(y, np.float32(0), out=out)
    elif name == "linear":
        np.copyto(out, y)
    else:
        np.copyto(out, activate(y, name))


def _arranged_weights(node: Node, algorithm: Algorithm, weights: np.ndarray) -> np.ndarray:
    arranged = algorithm.weights(weights)
    if arranged is None:
        raise ValueError(f"layer {node.index}: the {algorithm.name} algorithm has no weight layout of its own")
    return arranged


class _Conv(_Step):
    """A convolution (and the max pool after it, when fused) by one algorithm, in row bands."""

    def __init__(self, node: Node, params: LayerParams, n: int, algorithm: Algorithm, pool: Node | None,
                 memory: _Memory):
        super().__init__((node,) if pool is None else (node, pool), n)
        self.layer = node.layer_as(Convolutional)
        self.node, self.algorithm, self.pool = node, algorithm, pool
        self.weights, self.bias = params["weights"], params["biases"]
        refusal = algorithm.refusal(node)
        if refusal:
            raise ValueError(f"layer {node.index}: {refusal}")
        # Plain keeps the weights as stored; the others' layouts are made once for the plan and its lanes.
        arranged = None if algorithm is PLAIN else memory.derived(
            node, algorithm.name, lambda: _arranged_weights(node, algorithm, self.weights))
        if isinstance(algorithm, Winograd):
            self.kernel, self.m = arranged, algorithm.m
        elif arranged is not None:
            self.matrix = arranged
        padded_shape = algorithm.padded_shape(node, n)
        if padded_shape is not None:
            self.padded = memory.zeros(padded_shape)
            self.input, self.layout = algorithm.interior(self.padded, node), algorithm.layout
            self.buffers.append(self.padded)
        self.buffers += [arranged] if arranged is not None else []
        self.memory = memory

    def filter_slice(self, f0: int, f1: int) -> tuple[Any, np.ndarray, np.ndarray, Any]:
        """(matrix, bias, weights, Winograd kernel) for output channels [f0, f1): the step's own
        arrays for all of them, else contiguous copies made once per plan (a band that splits a
        layer by filters hands BLAS a whole operand of its own)."""
        matrix, kernel = getattr(self, "matrix", None), getattr(self, "kernel", None)
        if (f0, f1) == (0, self.node.out_shape[0]):
            return matrix, self.bias, self.weights, kernel
        def part(array: np.ndarray | None, what: str, cut: Callable[[np.ndarray], np.ndarray]) -> np.ndarray | None:
            if array is None:
                return None
            return self.memory.derived(self.node, f"{what} {f0}:{f1}", lambda: np.ascontiguousarray(cut(array)))
        sliced = (part(matrix, "matrix", lambda a: a[:, f0:f1]), self.bias[f0:f1], self.weights[f0:f1],
                  part(kernel, "kernel", lambda a: a[:, :, f0:f1]))
        self.buffers += [array for array in (sliced[0], sliced[3]) if array is not None]
        return sliced

    def _granularity(self) -> int | None:
        """Final output rows per unit of splitting; None when the step runs as one band."""
        if self.algorithm is PLAIN:
            return None
        tile = self.algorithm.tile  # conv rows computed together
        if self.pool is None:
            return tile
        pool = self.pool.layer_as(Maxpool)
        # Bands start on whole tiles, and their windows stay inside the input; overlapping windows
        # (3x3 at stride 2) make neighbouring bands both compute the conv rows they share.
        if (pool.padding // 2 or tile % pool.stride and tile != 1
                or _pool_scratch(self.n, self.node.out_shape, self.pool) is not None):
            return None
        return max(1, tile // pool.stride)

    def bind(self, x: np.ndarray, out: np.ndarray, parts: int,
             rows: list[tuple[int, int]] | None = None, by_filters: bool = False) -> None:
        """As _Step.bind; `rows`: the output row bands to use instead (a 1x1 convolution only);
        `by_filters`: `parts` bands of whole maps, each computing a share of the output channels."""
        self.x, self.out = x, out
        if self.algorithm is PLAIN:
            self.tasks = [self.run_plain]
            return
        arena = self.arena or _Arena()
        if by_filters:
            # A whole-map band per share of the filters: each member multiplies by (and BLAS
            # packs) only its own share of the weights, where row bands would each take them all.
            self.row_bands = [(0, out.shape[1])]
            self.bands = [_ConvBand(self, 0, out.shape[1], True, arena.allocator(0 if self.shared_slot else index),
                                    filters=(f0, f1))
                          for index, (f0, f1) in enumerate(_split(self.node.out_shape[0], parts))]
            self.tasks = [band.run for band in self.bands]
            return
        unit = self._granularity()
        if rows is not None:
            if not self.follows_rows:
                raise ValueError(f"layer {self.node.index}: only an unpooled 1x1 convolution takes given bands")
            bands = rows
        elif unit is None:
            bands = [(0, out.shape[1])]
        else:
            # Tall maps get more bands than asked, so that each band's columns stay in cache.
            parts = max(parts, -(-self.node.out_shape[1] // ROWS_PER_BAND))
            bands = [(a * unit, min(b * unit, out.shape[1])) for a, b in _split(-(-out.shape[1] // unit), parts)]
        self.row_bands = bands
        self.bands = [_ConvBand(self, q0, q1, len(bands) == 1, arena.allocator(0 if self.shared_slot else index))
                      for index, (q0, q1) in enumerate(bands)]
        self.tasks = [band.run for band in self.bands]

    @property
    def follows_rows(self) -> bool:
        """True when output rows [q0, q1) read only input rows [q0, q1): any bands will do."""
        return self.algorithm is GEMM and self.pool is None

    def run_plain(self) -> None:
        # Grouped convolutions: the NCHW path computes bias and activation itself.
        layer = self.layer
        _, oh, ow = self.node.out_shape
        nchw = np.ascontiguousarray(self.x.transpose(0, 3, 1, 2))
        np.copyto(self.out, convolve(nchw, layer, self.weights, self.bias, oh, ow).transpose(0, 2, 3, 1))


class _ConvBand:
    """Final output rows [q0, q1) of a _Conv step: its own buffers, run on one thread."""

    def __init__(self, step: _Conv, q0: int, q1: int, whole: bool,
                 take: Callable[[tuple[int, ...]], np.ndarray], filters: tuple[int, int] | None = None):
        """`filters`: the range [f0, f1) of output channels the band computes (default: all)."""
        self.step, self.take = step, take
        layer, n = step.layer, step.n
        c = step.node.in_shape[0]
        _, oh, ow = step.node.out_shape
        f0, f1 = filters or (0, step.node.out_shape[0])
        f = f1 - f0
        self.matrix, self.bias, self.weights, self.kernel = step.filter_slice(f0, f1)
        k, s = layer.size, layer.stride
        if step.pool is None:
            r0, r1 = q0, q1
        elif whole:
            r0, r1 = 0, oh
        else:
            pool = step.pool.layer_as(Maxpool)
            r0, r1 = q0 * pool.stride, (q1 - 1) * pool.stride + pool.size
        self.rows = r1 - r0
        if step.algorithm is GEMM:
            # One (images x pixels, c) matmul where the rows of every image are contiguous: NumPy
            # runs a stack of matrices as one BLAS call per image (measured 20% slower at 32 x 7x7).
            whole = (r0, r1) == (0, oh) and step.x.flags.c_contiguous
            self.x = step.x[:, r0:r1].reshape(1 if whole else n, -1, c)
            self.raw = take((n, self.rows, ow, f))
        elif step.algorithm is IM2COL:
            self.windows = [step.padded[:, r0 * s + i:(r1 - 1) * s + i + 1:s, j:(ow - 1) * s + j + 1:s]
                            for i in range(k) for j in range(k)]
            self.columns = take((n, self.rows, ow, k * k, c))
            self.raw = take((n, self.rows, ow, f))
        elif step.algorithm is NCHW:
            # Columns copied as whole image rows, (c*k*k, pixels); the matmul reads them transposed
            # and writes NHWC, so that pool, bias and activation run on contiguous pixels.
            self.columns = take((n, c, k * k, self.rows, ow))
            self.copies = [(self.columns[:, :, i * k + j],
                            step.padded[:, :, r0 * s + i:(r1 - 1) * s + i + 1:s, j:(ow - 1) * s + j + 1:s])
                           for i in range(k) for j in range(k)]
            self.columns_t = self.columns.reshape(n, c * k * k, -1).transpose(0, 2, 1)
            self.raw = take((n, self.rows, ow, f))
        else:
            m = step.m
            t0, t1 = r0 // m, -(-r1 // m)
            self.winograd = WinogradConv(self.weights, n, (t1 - t0) * m, ow, m, allocate=take,
                                         padded_input=step.padded[:, t0 * m:t1 * m + k - 1], kernel=self.kernel)
        self.scratch = None
        self.row_pairs: np.ndarray | None = None
        if step.pool is not None:
            self.pooled = take((n, q1 - q0, step.out.shape[2], f))
            if whole:
                self.scratch = _pool_scratch(n, (f, oh, ow), step.pool, take)
            pool = step.pool.layer_as(Maxpool)
            if (not isinstance(step.algorithm, Winograd) and self.scratch is None and pool.size == pool.stride == 2
                    and 2 * (q1 - q0) <= self.rows and 2 * step.out.shape[2] <= ow):
                # A 2x2 pool as rows then columns: the row pairs are whole contiguous rows, and the
                # column pairs whole pixels (measured 1.6x faster than the four strided windows).
                self.row_pairs = take((n, q1 - q0, ow, f))
        self.out = step.out[:, q0:q1, :, f0:f1]
        self.temp = None
        if step.layer.activation == "leaky":
            self.temp = take(self.out.shape)
        if isinstance(step.algorithm, Winograd):
            self._fuse_winograd_epilogue(n, f, ow, q1 - q0)
        else:
            # The bias repeated along a whole row of pixels: NumPy's inner loop then runs the row,
            # not one pixel's channels (measured 2-3x faster with 16 filters).
            y = self.pooled if step.pool is not None else self.raw
            self.bias_rows = y.reshape(-1, y.shape[2] * f)
            self.bias_row = np.tile(self.bias, y.shape[2])

    def _fuse_winograd_epilogue(self, n: int, f: int, ow: int, pooled_rows: int) -> None:
        """Add the bias before the output transform, and fuse a 2x2 pool into the tile reordering.

        Column 1 of A^T is all ones (every tile size: point 1), so adding b to the products at tile
        position (1, 1) adds b to every output of the tile: one add over 1/a^2 of the products instead
        of a pass over the output. A fused 2x2 pool reads the four parities of every tile from the
        output transform's result directly instead of a reordered copy. (Stacking 0.1 x the
        transform for leaky, to finish with one maximum, was measured slower.)
        """
        step, wg = self.step, self.winograd
        m, th, tw = wg.m, wg.tiles_h, wg.tiles_w
        pool = step.pool.layer_as(Maxpool) if step.pool is not None else None
        if pool is not None and not (pool.size == pool.stride == 2 and pool.padding // 2 == 0 and self.scratch is None):
            self.epilogue = None  # another pool: the plain copy, then maxpool_nhwc
            return
        self.bias_position = wg.products[wg.a + 1]  # position (1, 1) of the a x a tile
        # (m, m, n, th, tw, f) -> (n, th, m, tw, m, f): tile order, lazily.
        self.tiled = wg.output.reshape(m, m, n, th, tw, f).transpose(2, 3, 0, 4, 1, 5)
        if pool is not None:
            self.epilogue = "pool"
            self.pooled = self.take((n, th * m // 2, tw * m // 2, f))  # whole tiles
            self.pooled_valid = self.pooled[:, :pooled_rows, :self.out.shape[2]]
            self.pooled_tiled = self.pooled.reshape(n, th, m // 2, tw, m // 2, f)
            quads = self.tiled.reshape(n, th, m // 2, 2, tw, m // 2, 2, f)
            self.quads = [quads[:, :, :, i, :, :, j] for i in range(2) for j in range(2)]
        else:
            self.epilogue = "copy"
            self.result_tiled = wg.result.reshape(n, th, m, tw, m, f)
            self.result = wg.result[:, :self.rows, :ow]

    def _run_winograd(self) -> np.ndarray:
        """The convolution plus bias, pooled when fused."""
        step, wg = self.step, self.winograd
        if self.epilogue is None:
            return wg.run(self.bias)[:, :self.rows, :step.node.out_shape[2]]
        wg.transformed_products()
        np.add(self.bias_position, self.bias, out=self.bias_position)
        wg.transform_output()
        if self.epilogue == "copy":
            np.copyto(self.result_tiled, self.tiled)
            return self.result
        # The 2x2 pool on the tile-ordered view: the four (row, column) parities, pooled in place.
        pooled, (q00, q01, q10, q11) = self.pooled_tiled, self.quads
        np.maximum(q00, q01, out=pooled)
        np.maximum(pooled, q10, out=pooled)
        np.maximum(pooled, q11, out=pooled)
        return self.pooled_valid

    def run(self) -> None:
        step = self.step
        if isinstance(step.algorithm, Winograd):
            y = self._run_winograd()
            if self.epilogue is None and step.pool is not None:
                pool = step.pool.layer_as(Maxpool)
                maxpool_nhwc(y, pool.size, pool.stride, pool.padding, self.pooled, self.scratch)
                y = self.pooled
            _activate_into(y, step.layer.activation, self.out, self.temp)
            return
        if step.algorithm is GEMM:
            np.matmul(self.x, self.matrix, out=self.raw.reshape(self.x.shape[0], -1, self.raw.shape[-1]))
            y = self.raw
        elif step.algorithm is IM2COL:
            for index, window in enumerate(self.windows):
                np.copyto(self.columns[:, :, :, index], window)
            columns = self.columns.reshape(-1, self.matrix.shape[0])
            np.matmul(columns, self.matrix, out=self.raw.reshape(columns.shape[0], -1))
            y = self.raw
        elif step.algorithm is NCHW:
            for column, window in self.copies:
                np.copyto(column, window)
            np.matmul(self.columns_t, self.matrix, out=self.raw.reshape(step.n, -1, self.matrix.shape[1]))
            y = self.raw
        else:
            y = self.winograd.run(self.bias)[:, :self.rows, :step.node.out_shape[2]]
        if self.row_pairs is not None:
            pairs, pooled = self.row_pairs, self.pooled
            rows, cols = 2 * pooled.shape[1], 2 * pooled.shape[2]
            np.maximum(y[:, 0:rows:2], y[:, 1:rows:2], out=pairs)
            np.maximum(pairs[:, :, 0:cols:2], pairs[:, :, 1:cols:2], out=pooled)
            y = pooled
        elif step.pool is not None:
            pool = step.pool.layer_as(Maxpool)
            maxpool_nhwc(y, pool.size, pool.stride, pool.padding, self.pooled, self.scratch)
            y = self.pooled
        np.add(self.bias_rows, self.bias_row, out=self.bias_rows)  # (Winograd adds it before its output transform)
        _activate_into(y, step.layer.activation, self.out, self.temp)


class _Maxpool(_Step):
    def __init__(self, node: Node, n: int):
        super().__init__((node,), n)
        self.scratch = _pool_scratch(n, node.in_shape, node)
        self.buffers += [self.scratch] if self.scratch is not None else []

    def run(self) -> None:
        layer = self.nodes[0].layer_as(Maxpool)
        maxpool_nhwc(self.x, layer.size, layer.stride, layer.padding, self.out, self.scratch)


class _Avgpool(_Step):
    def run(self) -> None:
        np.mean(self.x, axis=(1, 2), dtype=np.float32, keepdims=True, out=self.out)


class _AverageThenGemm(_Step):
    """A linear 1x1 convolution and the global average pool after it, averaged first.

    mean(W x + b) = W mean(x) + b: the matmul runs on one pixel instead of every pixel.
    """

    def __init__(self, conv: Node, params: LayerParams, pool: Node, n: int, memory: _Memory):
        super().__init__((conv, pool), n)
        self.matrix = memory.derived(conv, "averaged matrix", lambda: np.ascontiguousarray(  # (c, filters)
            params["weights"].reshape(conv.out_shape[0], -1).T))
        self.bias = params["biases"]
        self.mean = np.empty((n, conv.in_shape[0]), np.float32)
        self.buffers += [self.matrix, self.mean]

    def run(self) -> None:
        np.mean(self.x, axis=(1, 2), dtype=np.float32, out=self.mean)
        out = self.out.reshape(self.n, -1)
        np.matmul(self.mean, self.matrix, out=out)
        np.add(out, self.bias, out=out)


class _Softmax(_Step):
    def run(self) -> None:
        # Darknet's softmax runs over the CHW-ordered vector.
        nchw = np.ascontiguousarray(self.x.transpose(0, 3, 1, 2))
        y = softmax(nchw, self.nodes[0].layer_as(Softmax))  # (n, chw, 1, 1), the same in NHWC
        np.copyto(self.out, y.reshape(self.out.shape))


class _Shortcut(_Step):
    """alpha * input + beta * an earlier output, then the activation, in row bands at batch 1
    when the two have the same shape (Darknet's sampling between shapes runs as one band)."""

    follows_rows = True  # output rows [r0, r1) read only rows [r0, r1) of x: any bands will do

    def __init__(self, node: Node, n: int):
        super().__init__((node,), n)
        self.layer = node.layer_as(Shortcut)

    def bind(self, x: np.ndarray, out: np.ndarray, parts: int, rows: list[tuple[int, int]] | None = None) -> None:
        """As _Step.bind; `rows`: the row bands to use (those of the step that writes x)."""
        self.x, self.out = x, out
        c, h, w = self.nodes[0].in_shape
        source = self.sources[0]
        self.overlap = self.layer.overlap((c, h, w), (source.shape[3], *source.shape[1:3]))
        self.whole = source.shape[1:] == (h, w, c)  # else Darknet's overlap: fewer channels, sampling
        self.plain_sum = self.layer.alpha == 1 and self.layer.beta == 1
        self.row_bands = rows or _split(h, parts)
        self.temps = [np.empty(out[:, r0:r1].shape, np.float32) if self.layer.activation == "leaky" else None
                      for r0, r1 in self.row_bands]
        self.tasks = [functools.partial(self._rows, r0, r1, temp)
                      for (r0, r1), temp in zip(self.row_bands, self.temps, strict=True)]

    def _rows(self, r0: int, r1: int, temp: np.ndarray | None) -> None:
        layer, out = self.layer, self.out[:, r0:r1]
        alpha, beta = np.float32(layer.alpha), np.float32(layer.beta)
        if self.whole:
            x, added = self.x[:, r0:r1], self.sources[0][:, r0:r1]
            if self.plain_sum:
                np.add(x, added, out=out)
            else:
                np.multiply(x, alpha, out=out)
                out += beta * added
        else:  # Darknet's sampling: the overlap, every `sample`-th cell of x, every `stride`-th of the source
            channels, height, width, stride, sample = self.overlap
            np.copyto(out, self.x[:, r0:r1])
            first, last = -(-r0 // sample), min(height, -(-r1 // sample))  # overlap rows i: r0 <= i*sample < r1
            region = self.out[:, first * sample:last * sample:sample, ::sample, :channels][:, :, :width]
            added = self.sources[0][:, first * stride:last * stride:stride, ::stride, :channels][:, :, :width]
            region[...] = alpha * region + beta * added
        _activate_into(out, layer.activation, out, temp)


class _Connected(_Step):
    """Darknet's connected layer on the NHWC input: the weights' columns reordered once from CHW.

    With several members its outputs are split between them, each share of the weights a
    contiguous matrix of its own: the layer reads far more weights than inputs (AlexNet's first,
    150 MB), and two cores stream them faster than one.
    """

    def __init__(self, node: Node, params: LayerParams, n: int, memory: _Memory):
        super().__init__((node,), n)
        self.layer = node.layer_as(Connected)
        self.node, self.memory = node, memory
        self.weights, self.bias = params["weights"], params["biases"]

    def bind(self, x: np.ndarray, out: np.ndarray, parts: int) -> None:
        self.x, self.out = x, out
        outputs = self.bias.shape[0]
        shares = _split(outputs, parts) if outputs >= MIN_FILTERS_PER_BAND * parts else [(0, outputs)]
        self.tasks = [functools.partial(self._outputs, *self._share(o0, o1)) for o0, o1 in shares]

    def _share(self, o0: int, o1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(matrix, bias, out, temp) of outputs [o0, o1): the matrix (h*w*c, o1 - o0), made once."""
        weights, in_shape = self.weights, self.node.in_shape

        def make() -> np.ndarray:
            return weights_in_hwc_order(weights[o0:o1], in_shape, inputs_first=True)  # x @ matrix
        matrix = self.memory.derived(self.node, f"nhwc matrix {o0}:{o1}", make)
        self.buffers.append(matrix)
        out = self.out.reshape(self.n, -1)[:, o0:o1]
        temp = np.empty(out.shape, np.float32) if self.layer.activation == "leaky" else None
        return matrix, self.bias[o0:o1], out, temp

    def _outputs(self, matrix: np.ndarray, bias: np.ndarray, out: np.ndarray, temp: np.ndarray | None) -> None:
        np.matmul(self.x.reshape(self.n, -1), matrix, out=out)
        np.add(out, bias, out=out)
        _activate_into(out, self.layer.activation, out, temp)


class _Layer(_Step):
    """Any other kind, by the plain path's function on NCHW views (route, crop, upsample, batchnorm)."""

    def __init__(self, node: Node, params: LayerParams, n: int):
        super().__init__((node,), n)
        self.params = params

    def run(self) -> None:
        node = self.nodes[0]
        y = FAST[node.kind](node, self.params, self.x.transpose(0, 3, 1, 2),
                            tuple(source.transpose(0, 3, 1, 2) for source in self.sources))
        np.copyto(self.out, y.transpose(0, 2, 3, 1))


def _conv_step(group: Group, params: Sequence[LayerParams], n: int, algorithms: dict[int, Algorithm],
               memory: _Memory) -> _Step:
    conv = group[0]
    if len(group) == 2 and group[1].kind == "avgpool":
        return _AverageThenGemm(conv, params[conv.index], group[1], n, memory)
    pool = group[1] if len(group) == 2 else None
    return _Conv(conv, params[conv.index], n, algorithms[conv.index], pool, memory)


# The step running each group of nodes (fusion.py), by the kind of its first node.
StepFactory = Callable[[Group, Sequence[LayerParams], int, dict[int, Algorithm], _Memory], _Step]
STEPS: dict[str, StepFactory] = {
    "convolutional": _conv_step,
    "maxpool": lambda group, params, n, algorithms, memory: _Maxpool(group[0], n),
    "avgpool": lambda group, params, n, algorithms, memory: _Avgpool(group, n),
    "softmax": lambda group, params, n, algorithms, memory: _Softmax(group, n),
    "shortcut": lambda group, params, n, algorithms, memory: _Shortcut(group[0], n),
    "connected": lambda group, params, n, algorithms, memory: _Connected(group[0], params[group[0].index], n, memory),
} | {kind: (lambda group, params, n, algorithms, memory: _Layer(group[0], params[group[0].index], n))
     for kind in ("route", "crop", "upsample", "batchnorm")}
PLANNED_KINDS = frozenset(STEPS) | IDENTITY_KINDS


def _chain(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        first()
        second()
    return both


@dataclass(frozen=True)
class Split:
    """How a step's work is cut into tasks: `parts` bands of rows, or of filters."""

    parts: int
    by_filters: bool = False


@dataclass(frozen=True)
class Plan:
    """What runs `graph` on `batch` images, decided once and never changed; it holds no arrays
    (an Executor allocates and runs them).

    threads: members of the team. band_members: members that split each image's bands (all of
    them at batch 1; 1 at larger batches, where each member runs whole images through a lane of
    its own, `lanes` in all). chunk: images per pass. groups: the layers each step runs
    (fusion.py). algorithms: each convolution's. splits: each step's tasks, by its first node.
    processes: the team is forked processes (a Network's "processes" pool), else threads. tail:
    the plan of the layers after `groups`, which run on the whole batch (see WEIGHT_BOUND_ROWS).
    """

    graph: Graph
    batch: int
    threads: int
    band_members: int
    chunk: int
    lanes: int
    groups: tuple[Group, ...]
    algorithms: Mapping[int, Algorithm]
    splits: Mapping[int, Split]
    parts: int
    fused: bool
    processes: bool
    tail: Plan | None = None

    @classmethod
    def make(cls, graph: Graph, batch: int, algorithms: dict[int, str] | None = None, fuse: bool = True,
             threads: int | None = None, chunk: int | None = None, bands: int | None = None,
             processes: bool = False) -> Plan:
        """algorithms: per node index, the name of an algorithm (algorithms.BY_NAME) forcing the
        choice (for tests). fuse: run layers together (off when every layer's output is kept).
        threads: default, the cores this process may use. chunk: default, the largest divisor of
        batch up to CHUNK (SMALL_MAPS_CHUNK for networks with heavy layers on small maps). bands:
        row bands per step (default: threads x BANDS_PER_THREAD at batch 1, at least MIN_BANDS)."""
        threads = threads or available_cores()
        forced = {index: BY_NAME[name] for index, name in (algorithms or {}).items()}
        chosen = {node.index: forced.get(node.index) or choose(node)
                  for node in graph.nodes if node.kind == "convolutional"}
        groups = tuple(fuse_groups(graph, _rules(chosen)) if fuse else [(node,) for node in graph.nodes])
        processes = processes and threads > 1
        start = _whole_batch_start(groups, chosen) if batch > 1 and threads > 1 and fuse and not processes else None
        if start is not None:  # the end's convolutions multiply the whole batch's tiles together
            chosen |= {node.index: forced.get(node.index) or choose(node, batch) for group in groups[start:]
                       for node in group if node.kind == "convolutional"}
        if start == 0:  # small maps throughout: all of it at once
            return cls._whole_batch(graph, batch, threads, groups, chosen, bands)
        tail = cls._whole_batch(graph, batch, threads, groups[start:], chosen, bands) if start else None
        groups = groups[:start]
        band_members = threads if batch == 1 else 1
        parts = bands or max(band_members * BANDS_PER_THREAD, MIN_BANDS)
        # Every member gets a pass of its own before passes grow.
        most = max(1, min(batch // threads, _chunk_target(graph, groups, chosen)))
        chunk = chunk or max(d for d in range(1, most + 1) if batch % d == 0)
        if batch % chunk:
            raise ValueError(f"chunk {chunk} does not divide batch {batch}")
        splits = {group[0].index: _split_of(group, chosen, band_members, parts) for group in groups}
        lanes = min(threads, batch // chunk) if band_members == 1 and threads > 1 and batch > chunk else 1
        return cls(graph, batch, threads, band_members, chunk, lanes, groups, chosen, splits, parts, fuse,
                   processes, tail)

    @classmethod
    def _whole_batch(cls, graph: Graph, batch: int, threads: int, groups: tuple[Group, ...],
                     algorithms: Mapping[int, Algorithm], bands: int | None) -> Plan:
        """The plan running `groups` on the whole batch in one pass, every member on each step."""
        parts = bands or max(threads * BANDS_PER_THREAD, MIN_BANDS)
        splits = {group[0].index: _split_of(group, algorithms, threads, parts) for group in groups}
        return cls(graph, batch, threads, threads, batch, 1, groups, algorithms, splits, parts, True, False, None)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(c, h, w) of what the plan's first step reads: the network's input, or where a head left off."""
        return self.groups[0][0].in_shape if self.groups else self.graph.input_shape

    def lane(self) -> Plan:
        """The plan of one lane: its member's chunk of images, on its own (the same steps and
        splits: lanes exist only where each image runs on one member)."""
        return replace(self, batch=self.chunk, threads=1, lanes=1, processes=False, tail=None)


def _split_of(group: Group, algorithms: Mapping[int, Algorithm], band_members: int, parts: int) -> Split:
    """Short maps: one band per member, the matmuls of thinner bands lose more than caches gain;
    a convolution with many filters there is split by filters instead (see _Conv.bind)."""
    filters, rows, _ = group[0].out_shape
    if rows >= parts * MIN_ROWS_PER_BAND:
        return Split(parts)
    if (group[0].kind == "convolutional" and band_members > 1 and algorithms[group[0].index] is not PLAIN
            and filters >= MIN_FILTERS_PER_BAND * band_members and not _averaged(group)):
        return Split(band_members, by_filters=True)
    return Split(band_members)


def _averaged(group: Group) -> bool:
    return len(group) == 2 and group[1].kind == "avgpool"


def _chunk_target(graph: Graph, groups: Sequence[Group], algorithms: Mapping[int, Algorithm]) -> int:
    """Images per pass by the rows the heavy convolutions of `groups` multiply per image (see CHUNK)."""
    total = graph.flops()
    rows = [algorithms[node.index].rows(node) for group in groups for node in group
            if node.kind == "convolutional" and node.layer.flops(node.in_shape, node.out_shape) >= 0.02 * total]
    return SMALL_MAPS_CHUNK if rows and min(rows) < MIN_ROWS_PER_PASS else CHUNK


def _whole_batch_start(groups: Sequence[Group], algorithms: Mapping[int, Algorithm]) -> int | None:
    """Where the network's weight-bound end starts (see WEIGHT_BOUND_ROWS): the first group from
    which every group with weights is weight-bound and no layer reads one before that group; None
    when that end has no weights."""
    start = len(groups)
    while start and _weight_bound(groups[start - 1], algorithms) is not False:
        start -= 1
    while start < len(groups) and _reads_before(groups[start:], groups):
        start += 1
    return start if any(_weight_bound(group, algorithms) for group in groups[start:]) else None


def _reads_before(end: Sequence[Group], groups: Sequence[Group]) -> bool:
    """Whether a layer of `end` reads the output of a layer before it other than the one its first
    layer reads (that one's, or one's that only layers computing nothing follow)."""
    first = end[0][0].index
    nodes = [node for group in groups for node in group]
    return any(any(nodes[between].kind not in IDENTITY_KINDS for between in range(source + 1, first))
               for group in end for node in group for source in node.sources if source < first)


def _weight_bound(group: Group, algorithms: Mapping[int, Algorithm]) -> bool | None:
    """Whether the group's matmul reads its weights for few rows per image (None: no weights)."""
    first = group[0]
    if first.kind == "connected":
        return True
    if first.kind != "convolutional":
        return None
    layer = first.layer_as(Convolutional)
    rows = 1 if _averaged(group) else algorithms[first.index].rows(first)
    weights = layer.size ** 2 * first.in_shape[0] * first.out_shape[0] // layer.groups
    return rows <= WEIGHT_BOUND_ROWS and weights >= math.prod(first.in_shape) + math.prod(first.out_shape)


def _rules(algorithms: Mapping[int, Algorithm]) -> list[Rule]:
    """The fusions the plan runs (see fusion.py), as far as the chosen algorithms allow."""
    return [CONV_MAXPOOL.where(lambda nodes: algorithms[nodes[0].index] is not PLAIN),
            CONV_AVGPOOL.where(lambda nodes: algorithms[nodes[0].index] is GEMM)]


class Executor:
    """A Plan's steps and buffers, and the team that runs them; not thread-safe (buffers are shared).

    workers: the Network's pool (workers.py) whose threads or processes run it (default: a pool of
    its own, in threads). derived: the weight-derived arrays of the executor this one is a lane or
    the tail of (see _Memory). A plan with a tail has an executor for it (`tail`), into whose
    input the lanes write their results.
    """

    def __init__(self, plan: Plan, params: Sequence[LayerParams], workers: Workers | None = None,
                 derived: dict[tuple[int, str], np.ndarray] | None = None):
        self.plan, self.graph, self.batch, self.chunk = plan, plan.graph, plan.batch, plan.chunk
        self.owner = os.getpid()
        self.cores = available_cores()  # read once: under a cgroup it means reading files
        self.workers_pool = workers or Workers("processes" if plan.processes else "threads")
        self.processes = plan.processes
        # Members of a process team see each other's writes only in shared memory: the buffers
        # between steps when they split each step's bands, the batch's inputs and results with lanes.
        memory = _Memory(self.processes and plan.band_members > 1, {} if derived is None else derived)
        # The first build finds how much working memory the bands take, a second one uses it shared.
        self.arena = _Arena()
        self._build(params, memory)
        if not self.arena.fits:
            self.arena = _Arena(self.arena.need)
            self._build(params, memory)
        self.lanes = [self]
        if plan.lanes > 1:
            lane = plan.lane()
            self.lanes += [Executor(lane, params, self.workers_pool, memory.derived_arrays)
                           for _ in range(plan.lanes - 1)]
        self.team: ProcessTeam | ThreadTeam | None = None
        members = plan.band_members if plan.band_members > 1 else len(self.lanes)
        if members > 1:
            work = self._run_bands if plan.band_members > 1 else self._run_lane
            self.team = self.workers_pool.team(members, work, self.processes)
        self.tail = Executor(plan.tail, params, self.workers_pool, memory.derived_arrays) if plan.tail else None
        self.batch_buffers: list[np.ndarray] = []  # the batch's inputs and results, for process lanes
        if plan.band_members == 1 and self.processes and len(self.lanes) > 1:
            self.inputs = shared_zeros((plan.batch, *plan.graph.input_shape))
            self.results = shared_zeros(self.result_shape)
            self.batch_buffers = [self.inputs, self.results]

    @classmethod
    def of(cls, graph: Graph, params: Sequence[LayerParams], batch: int, workers: Workers | None = None,
           processes: bool | None = None, **decisions: Any) -> Executor:
        """Plan and executor in one call (decisions: Plan.make's options). processes: in a
        "processes" pool, True for a ProcessTeam, False for a ThreadTeam (default: processes for
        runs of MIN_PROCESS_FLOPS or more); True without a pool: a "processes" pool."""
        pool = workers or Workers("processes" if processes else "threads")
        if processes is None:
            processes = graph.flops() * batch >= MIN_PROCESS_FLOPS
        plan = Plan.make(graph, batch, processes=processes and pool.mode == "processes", **decisions)
        return cls(plan, params, pool)

    @property
    def algorithms(self) -> Mapping[int, Algorithm]:
        return self.plan.algorithms

    def _build(self, params: Sequence[LayerParams], memory: _Memory) -> None:
        plan, n = self.plan, self.chunk
        algorithms = dict(plan.algorithms)
        self.steps: list[_Step] = [STEPS[group[0].kind](group, params, n, algorithms, memory)
                                   for group in plan.groups if group[0].kind not in IDENTITY_KINDS]
        for step in self.steps:
            step.arena, step.shared_slot = self.arena, plan.band_members == 1
        # Each step writes where the next one reads; a reader that does not care gets a new buffer.
        c, h, w = plan.input_shape
        first_input = self.steps[0].input if self.steps else None
        if first_input is None:
            first_input = memory.zeros((n, h, w, c))
            if self.steps:
                self.steps[0].input = first_input
        self.first_input: np.ndarray = first_input
        self.first_layout = self.steps[0].layout if self.steps else "nhwc"
        # Node index -> where its output is (NHWC), for sources; -1: the input (where layers that
        # compute nothing lead a source back to it, the first step reads it in NHWC).
        outputs: dict[int, np.ndarray] = {-1: first_input}
        for step, reader in zip(self.steps, self.steps[1:] + [None], strict=False):
            step.sources = tuple(outputs[self._computed(index)] for index in step.nodes[0].sources)
            c, h, w = step.nodes[-1].out_shape
            if reader is None:
                target = memory.zeros((n, h, w, c))
                step.buffers.append(target)
            else:
                if reader.input is None:
                    reader.input = memory.zeros((n, h, w, c))
                    reader.buffers.append(reader.input)
                target = reader.input
            split = plan.splits[step.nodes[0].index]
            assert step.input is not None  # set above: first_input, or the previous step's target
            if split.by_filters:
                assert isinstance(step, _Conv)  # only convolutions split by filters (_split_of)
                step.bind(step.input, target, split.parts, by_filters=True)
            else:
                step.bind(step.input, target, split.parts)
            outputs[step.nodes[-1].index] = target
        self.last_output = self.steps[-1].out if self.steps else self.first_input
        self.phases = self._phases()

    def _computed(self, index: int) -> int:
        """The node whose output node `index` outputs: itself, or the one before an identity layer
        (-1: the plan's input, a node before the plan's first one included)."""
        first = self.plan.groups[0][0].index if self.plan.groups else 0
        while index >= first and self.graph.nodes[index].kind in IDENTITY_KINDS:
            index -= 1
        return index if index >= first else -1

    def _phases(self) -> list[list[Callable[[], None]]]:
        """The steps' tasks grouped into phases, the threads meeting only between phases.

        A step whose output rows read only the same rows of its input (a 1x1 convolution, a
        shortcut) after a step banded by rows takes the same row bands, each band running right
        after the band that wrote its rows; consecutive single-task steps run as one task.
        """
        phases: list[list[Callable[[], None]]] = []
        previous: _Step | None = None
        for step in self.steps:
            bands: list[tuple[int, int]] = getattr(previous, "row_bands", [])
            if (self.plan.parts > 1 and isinstance(step, (_Conv, _Shortcut)) and step.follows_rows
                    and previous is not None and step.x is previous.out and len(bands) > 1):
                step.bind(step.x, step.out, self.plan.parts, rows=bands)
                phases[-1] = [_chain(first, second) for first, second in zip(phases[-1], step.tasks, strict=True)]
            elif phases and len(phases[-1]) == 1 and len(step.tasks) == 1:
                phases[-1] = [_chain(phases[-1][0], step.tasks[0])]
            else:
                phases.append(list(step.tasks))
            previous = step
        return phases

    @property
    def nbytes(self) -> int:
        """Bytes held by the plan's preallocated buffers (weights in their new layouts included, once)."""
        # Counted once: the arrays derived from the weights, which the lanes share.
        executors = self.lanes + ([self.tail] if self.tail else [])
        arrays = {id(array): array for executor in executors for step in executor.steps for array in step.buffers}
        per_lane = sum(executor.first_input.nbytes + executor.arena.nbytes() for executor in executors)
        return sum(array.nbytes for array in arrays.values()) + per_lane + sum(b.nbytes for b in self.batch_buffers)

    def _execute(self) -> None:
        """Every step on the current chunk, on this thread."""
        for phase in self.phases:
            for task in phase:
                task()

    def _run_bands(self, rank: int) -> None:
        """A team member's share of each phase's bands (the team's `share`), phase after phase."""
        assert self.team is not None  # a plan with bands in parallel has a team
        for index, phase in enumerate(self.phases):
            if index:
                self.team.barrier(rank)
            for task in self.team.share(rank, index, len(phase)):
                phase[task]()

    def _run_lane(self, rank: int) -> None:
        """The chunks of the batch a team member claims, through its own lane."""
        assert self.team is not None  # a plan with several lanes has a team
        lane = self.lanes[rank]
        for index in self.team.claim(rank, self.batch // self.chunk):
            start = index * self.chunk
            lane._load(self.inputs[start:start + self.chunk])
            lane._execute()
            np.copyto(self.results[start:start + self.chunk], lane.last_output.transpose(0, 3, 1, 2))

    def _load(self, x: np.ndarray) -> None:
        np.copyto(self.first_input, x if self.first_layout == "nchw" else x.transpose(0, 2, 3, 1))

    def _check(self, x: np.ndarray) -> None:
        if x.shape[0] != self.batch or x.shape[1:] != self.graph.input_shape:
            raise ValueError(f"this plan runs {self.batch} x {self.graph.input_shape}, got {x.shape}")

    def run(self, x: np.ndarray) -> np.ndarray:
        """(batch, C, H, W) -> the last layer's output (batch, C', H', W'), a new array."""
        self._check(x)
        if self.processes and os.getpid() != self.owner:
            raise TeamError("a plan with a process team runs only in the process that built it, not in a fork")
        with BLAS.limit(limits=1 if self.plan.threads > 1 else self.cores, user_api="blas"):
            if self.tail is None:
                return self._run_batch(x, np.empty(self.result_shape, np.float32))
            # The lanes write their results where the tail reads (NHWC through an NCHW view).
            self._run_batch(x, self.tail.first_input.transpose(0, 3, 1, 2))
            return self.tail._run_batch(None, np.empty(self.tail.result_shape, np.float32))

    def _run_batch(self, x: np.ndarray | None, result: np.ndarray) -> np.ndarray:
        """The plan's steps on the batch x (None: the first step's input is in place already, all
        of the batch in one pass), their output written into result (batch, C', H', W')."""
        if self.team is None or self.plan.band_members > 1:
            for start in range(0, self.batch, self.chunk):
                if x is not None:
                    self._load(x[start:start + self.chunk])
                if self.team is None:
                    self._execute()
                else:
                    self.team.run()
                np.copyto(result[start:start + self.chunk], self.last_output.transpose(0, 3, 1, 2))
            return result
        assert x is not None  # only a whole-batch tail starts in place, and it runs in bands (above)
        if self.processes:  # helpers read the batch and write their results in shared memory
            np.copyto(self.inputs, x)
            self.team.run()
            np.copyto(result, self.results)
            return result
        self.inputs, self.results = x, result
        try:
            self.team.run()
            return result
        finally:
            del self.inputs, self.results  # the caller's array and the result, not kept beyond the run

    @property
    def result_shape(self) -> tuple[int, int, int, int]:
        """(batch, C', H', W'): what run returns."""
        if self.tail is not None:
            return self.tail.result_shape
        _, h, w, c = self.last_output.shape
        return self.batch, c, h, w

    def run_layers(self, x: np.ndarray) -> list[np.ndarray]:
        """Every layer's output in NCHW (a plan built with fuse=False: fused layers have no own output)."""
        if self.plan.fused:
            raise ValueError("run_layers needs a plan built with fuse=False")
        self._check(x)
        kept: dict[int, list[np.ndarray]] = {}
        with BLAS.limit(limits=self.cores, user_api="blas"):
            for start in range(0, self.batch, self.chunk):
                self._load(x[start:start + self.chunk])
                for step in self.steps:
                    for task in step.tasks:
                        task()
                    kept.setdefault(step.nodes[-1].index, []).append(step.out.transpose(0, 3, 1, 2).copy())
        # A layer without a step (cost, dropout) outputs its input.
        outputs, last = [], np.ascontiguousarray(x)
        for node in self.graph.nodes:
            last = np.concatenate(kept[node.index]) if node.index in kept else last
            outputs.append(last)
        return outputs


class PlannedProgram(Program):
    """The `numpy` backend's Program: the fused plan for run, an unfused one for run_layers."""

    def __init__(self, graph: Graph, params: Sequence[LayerParams], batch: int, workers: Workers | None = None):
        self.graph, self.params, self.batch, self.workers = graph, params, batch, workers
        self.executor = Executor.of(graph, params, batch, workers)
        self._unfused: Executor | None = None

    def run(self, x: np.ndarray) -> np.ndarray:
        if self.executor.owner != os.getpid():
            # A fork of the process that built the executor (a multiprocessing worker, say): its
            # shared memory belongs to that process and its helpers, so this one gets its own.
            self.executor = Executor(self.executor.plan, self.params, self.workers)
        return self.executor.run(x)

    def run_layers(self, x: np.ndarray) -> list[np.ndarray]:
        if self._unfused is None:
            self._unfused = Executor.of(self.graph, self.params, self.batch, self.workers, processes=False,
                                        fuse=False)
        return self._unfused.run_layers(x)
