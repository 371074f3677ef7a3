"""A loaded network: graph + folded parameters + a backend, runnable at any input size."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from tdn import pipeline
from tdn.backend import Backend, LayerParams, Program
from tdn.errors import BackendError, CfgError
from tdn.graph import Graph, load_graph
from tdn.image import DEFAULT_MAX_PIXELS, ImageLike
from tdn.plugins import registry
from tdn.weights import RawParams, fold_params, read_weights

PROGRAMS_KEPT = 8


PARALLEL_VARIABLE = "TDN_PARALLEL"


class Network:
    """Not thread-safe: one caller at a time (the programs' buffers are reused from run to run).

    parallel: how the backend uses the other cores, one of backend.parallel_modes (the numpy
    backend: "threads", the default, or "processes"); default: $TDN_PARALLEL, else the backend's
    first. Resources it holds (threads, helper processes) are released by close(), by leaving a
    `with` block, or when the Network is garbage collected.
    """

    def __init__(self, graph: Graph, params: RawParams, backend: Backend, precision: str | None = None,
                 parallel: str | None = None):
        precision = precision or backend.precisions[0]
        if precision not in backend.precisions:
            raise BackendError(f"backend '{backend.name}' does not offer precision {precision} "
                               f"(it offers: {', '.join(backend.precisions)})")
        unsupported = sorted({node.kind for node in graph.nodes} - backend.layer_kinds)
        if unsupported:
            raise BackendError(f"backend '{backend.name}' cannot run layer type(s) "
                               f"{', '.join(unsupported)} of {graph.source}")
        self.graph = graph
        self.precision = precision
        self.parallel = self._parallel_mode(backend, parallel)
        try:
            self.backend = backend.open(self.parallel)
        except ValueError as error:  # a mode this machine cannot run, such as processes off x86-64
            raise BackendError(f"backend '{backend.name}': {error}") from None
        self.params: list[LayerParams] = fold_params(graph, params) if backend.folded_batchnorm else params
        self._programs: OrderedDict[tuple[int, int, int], Program] = OrderedDict()

    @staticmethod
    def _parallel_mode(backend: Backend, parallel: str | None) -> str | None:
        """The mode asked for (argument, else environment), checked; None: the backend's default."""
        asked, where = parallel, "parallel"
        if asked is None and os.environ.get(PARALLEL_VARIABLE):
            asked, where = os.environ[PARALLEL_VARIABLE], PARALLEL_VARIABLE
        if asked is None:
            return None
        if asked not in backend.parallel_modes:
            offered = ", ".join(backend.parallel_modes) or "none: it has one way"
            raise BackendError(f"{where}={asked}: backend '{backend.name}' offers the parallel modes {offered}")
        return asked

    def close(self) -> None:
        """Release the programs and the backend's threads or helper processes (a later call
        starts new ones)."""
        self._programs.clear()
        self.backend.close()

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.graph.input_shape

    @property
    def classes(self) -> int:
        return self.graph.classes

    def program(self, batch: int, height: int, width: int) -> Program:
        """The backend's program for this batch and input size, built once and kept while it
        is among the PROGRAMS_KEPT most recently used (resize_min over photos of many sizes
        would otherwise keep a program, with its buffers, for every size seen).
        tdn.graph.ResizeError for a size other than the cfg's where Darknet cannot resize."""
        key = (batch, height, width)
        if key in self._programs:
            self._programs.move_to_end(key)
        else:
            graph = self.graph.resized(height, width)
            self._programs[key] = self.backend.prepare(graph, self.params, batch, self.precision)
            if len(self._programs) > PROGRAMS_KEPT:
                self._programs.popitem(last=False)
        return self._programs[key]

    def _batch(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim not in (3, 4):
            raise ValueError(f"expected an input of shape (C,H,W) or (N,C,H,W), got {x.shape}")
        batch = x if x.ndim == 4 else x[None]
        if batch.shape[1] != self.graph.net.channels:
            raise ValueError(f"expected {self.graph.net.channels} channels, got input {x.shape}")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if not np.isfinite(batch).all():
            raise ValueError(f"the input {x.shape} holds NaN or infinite values")
        return batch

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(C,H,W) -> (classes,); (N,C,H,W) -> (N, classes). float32, any H and W the cfg allows."""
        batch = self._batch(x)
        out = self.program(*batch.shape[0:1], *batch.shape[2:]).run(batch)
        return self._unbatched(out, len(batch), x.ndim == 3)

    def predict_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Like predict, for decoded images given as their pixels: (H,W,C) -> (classes,);
        (N,H,W,C) -> (N, classes); uint8, each standing for its tdn.image.to_float input (so an
        image at the size the network runs at: nothing resized or cropped). Gives predict's
        result for that input, bit for bit; the cuda backend uploads the bytes, a quarter of
        the float32 input's, and converts them on the GPU."""
        pixels = np.asarray(pixels)
        if pixels.dtype != np.uint8 or pixels.ndim not in (3, 4):
            raise ValueError(f"expected uint8 pixels of shape (H,W,C) or (N,H,W,C), got {pixels.dtype} {pixels.shape}")
        batch = np.ascontiguousarray(pixels if pixels.ndim == 4 else pixels[None])
        if batch.shape[3] != self.graph.net.channels:
            raise ValueError(f"expected {self.graph.net.channels} channels, got pixels {pixels.shape}")
        out = self.program(*batch.shape[0:3]).run_pixels(batch)
        return self._unbatched(out, len(batch), pixels.ndim == 3)

    @staticmethod
    def _unbatched(out: np.ndarray, batch: int, single: bool) -> np.ndarray:
        """A program's output as float32 (batch, classes), or (classes,) for a single image."""
        out = np.array(out, dtype=np.float32).reshape(batch, -1)
        return out[0] if single else out

    def predict_layers(self, x: np.ndarray) -> list[np.ndarray]:
        """Every layer's output for a (N,C,H,W) or (C,H,W) input, batch axis kept as given."""
        batch = self._batch(x)
        outs = self.program(batch.shape[0], *batch.shape[2:]).run_layers(batch)
        return [np.array(out, dtype=np.float32)[0] if x.ndim == 3 else np.array(out, np.float32)
                for out in outs]

    def predict_batches(self, images: Iterable[ImageLike], batch: int = 8, mode: str = "resize_min",
                        workers: int = 4, strict: bool = True,
                        decoder: str = "darknet",
                        max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Iterator[pipeline.Prediction]:
        """Classify many images (paths, PIL images, HxWx3 uint8 arrays, or 3xHxW float32 inputs
        already preprocessed), decoded on `workers` threads while the previous batch runs.
        Yields one tdn.pipeline.Prediction per image, in input order; strict=False reports an
        unreadable image as a Prediction with .error instead of raising ImageError, and so an image
        whose preprocessing would hold more than max_pixels pixels in one array (tdn.image).
        decoder: "darknet" decodes files to Darknet's own pixels, "pillow" with Pillow.
        resize_min raises tdn.graph.ResizeError at once for a network Darknet cannot resize."""
        if self.graph.net.channels != 3:
            raise CfgError(f"{self.graph.source}: the network takes {self.graph.net.channels}-channel input "
                           f"([net] channels); tdn reads images as RGB, 3 channels")
        if mode == "resize_min":
            self.graph.check_resizable()
        # Images whose preprocessing changes nothing reach a backend that uploads pixels as bytes.
        pixels = self.predict_pixels if self.backend.uploads_pixels else None
        return pipeline.predict_batches(self.predict, images, self.graph.net.width, self.graph.net.height,
                                        mode, batch, workers, strict, decoder, max_pixels, pixels)


def load(cfg: str | Path, weights: str | Path, backend: str | Backend = "auto",
         precision: str | None = None, parallel: str | None = None) -> Network:
    """Read a Darknet cfg and weights file and bind them to a backend ("auto": the best available)
    computing in `precision` (default: the backend's first, fp32 for the built-in ones), using
    the other cores in `parallel` mode (see Network)."""
    graph = load_graph(cfg)
    _, params = read_weights(weights, graph)
    chosen = backend if isinstance(backend, Backend) else registry().get(backend)
    return Network(graph, params, chosen, precision, parallel)
