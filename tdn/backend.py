"""The contract between tdn and a backend: backends only compute.

tdn hands a backend a :class:`~tdn.graph.Graph` whose every shape is known and the
per-layer parameters with batch-norm already folded. The backend returns a
:class:`Program` for one batch size and input size. Arrays cross the boundary as
C-contiguous NCHW float32 NumPy arrays on the host; inputs are never modified and
outputs belong to the caller.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np

from tdn.graph import Graph

LayerParams = dict[str, np.ndarray]


class Program(abc.ABC):
    """A network prepared by a backend for one (batch, height, width)."""

    @abc.abstractmethod
    def run(self, x: np.ndarray) -> np.ndarray:
        """(batch, C, H, W) float32 -> the last layer's output, (batch, *out_shape) float32."""

    @abc.abstractmethod
    def run_layers(self, x: np.ndarray) -> list[np.ndarray]:
        """Like run, but every layer's output in order, each (batch, *node.out_shape)."""

    def run_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Like run, for decoded images (batch, H, W, C) uint8 whose network input is exactly
        their tdn.image.to_float values (no resize or crop changed them): the same output, bit
        for bit. By default converted here on the host; a backend with Backend.uploads_pixels
        (cuda) uploads the bytes, a quarter of the float32 input's, and converts on its device."""
        from tdn.image import pixels_to_input  # PIL and the decoders: not at `tdn backends` start-up

        return self.run(pixels_to_input(pixels))


class Backend(abc.ABC):
    """One way of computing a network. Subclasses set the class attributes."""

    name: str
    description: str
    layer_kinds: frozenset[str]
    """The layer kinds it runs; load fails with a clear message for any other."""
    precisions: tuple[str, ...] = ("fp32",)
    """The arithmetic it offers, first the default: fp32, tf32 (fp32 storage, tensor-core
    products), fp16, fp64. Results always come back as float32."""
    priority: int = 0
    """backend="auto" picks the available backend with the highest priority; never a negative one."""
    folded_batchnorm: bool = True
    """prepare() gets batch-norm folded into weights and biases; False: the arrays as stored."""

    uploads_pixels: bool = False
    """Its programs' run_pixels moves uint8 pixels to the device and converts them there, so that
    tdn hands it decoded images as pixels where it can (tdn.pipeline); False: tdn converts them
    on its decoding threads, as for any other input."""

    parallel_modes: tuple[str, ...] = ()
    """The ways it offers of using the other CPU cores (tdn.load(parallel=)), first the default."""

    def open(self, parallel: str | None) -> Backend:
        """The backend as one Network uses it, holding that Network's resources (a worker pool
        in `parallel` mode, one of parallel_modes) until close(); by default the backend itself."""
        return self

    def close(self) -> None:  # noqa: B027 - optional: most backends acquire nothing in open()
        """Release what open() acquired (a no-op by default)."""

    def unavailable_reason(self) -> str | None:
        """None when the backend can run here, else one line saying why not."""
        return None

    @abc.abstractmethod
    def prepare(self, graph: Graph, params: Sequence[LayerParams], batch: int, precision: str) -> Program:
        """Build a Program for `batch` images of the graph's input size, computing in
        `precision` (always one of self.precisions: tdn checks before calling)."""
