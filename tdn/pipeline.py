"""Many images through one network: input expansion and ordered, batched prefetching.

Worker threads decode and preprocess the next images while the backend runs the current
batch. Threads rather than processes: PIL's decoders and NumPy's array loops release the
GIL, and in-memory inputs (arrays, PIL images) need no pickling.

Batches are runs of *consecutive* images with the same preprocessed shape. letterbox,
stretch and crop give every image the network's size, so batches are always full; in
resize_min mode each image keeps its aspect ratio, and an image whose shape differs from
the previous one starts a new batch. A folder of same-aspect photos still batches fully;
a folder of mixed aspects runs in short batches, down to one by one. Nothing is reordered,
so results come out in input order with bounded memory.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
from PIL import Image

from tdn.errors import ImageError, TdnError
from tdn.files import lines_of, read_regular
from tdn.image import (
    DEFAULT_MAX_PIXELS,
    MODES,
    ImageLike,
    check_preprocessing,
    decode,
    keeps_pixels,
    preprocess_pixels,
)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tga", ".tif", ".tiff",
                              ".webp", ".ppm", ".pgm", ".pnm"})


class InputError(TdnError):
    """An input list, directory or pattern that cannot be expanded into images."""


def _is_pattern(text: str) -> bool:
    return glob.has_magic(text)


def images_under(directory: Path) -> list[str]:
    """Image files under directory, recursively, sorted; hidden files and folders (a leading
    '.', such as .DS_Store, ._photo.jpg or .thumbnails/) are skipped."""
    found = [path for path in directory.rglob("*")
             if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()
             and not any(part.startswith(".") for part in path.relative_to(directory).parts)]
    return [str(path) for path in sorted(found)]


def read_list_text(source: str, stdin: TextIO | None = None) -> str:
    """The text of a list file; '-' reads standard input."""
    if source == "-":
        return (stdin or sys.stdin).read()
    return read_regular(source, "image list", InputError).decode("utf-8", errors="surrogateescape")


def read_list(source: str, stdin: TextIO | None = None) -> list[str]:
    """A list file: one path per line ('-' reads standard input); blank lines ignored."""
    return [line.strip() for line in lines_of(read_list_text(source, stdin)) if line.strip()]


def expand_inputs(items: Iterable[str]) -> list[str]:
    """Files as given, directories searched recursively for image extensions (sorted), glob
    patterns expanded (sorted; '**' recurses). A path that does not exist is kept, so that
    reading it fails and is reported rather than silently dropped."""
    paths: list[str] = []
    for item in items:
        if os.path.isdir(item):
            paths.extend(images_under(Path(item)))
        elif not os.path.exists(item) and _is_pattern(item):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise InputError(f"{item}: pattern matches no files")
            for match in matches:
                paths.extend(images_under(Path(match)) if os.path.isdir(match) else [match])
        else:
            paths.append(item)
    return paths


def describe(image: ImageLike, index: int) -> str:
    """The name a result carries: the path, or the position of an in-memory image."""
    if isinstance(image, (str, Path)):
        return str(image)
    return f"<image {index}>"


@dataclass(frozen=True)
class Prediction:
    """One input's outcome, in input order. Exactly one of probabilities and error is set."""

    index: int
    source: str
    probabilities: np.ndarray | None
    error: str | None = None
    seconds: float = 0.0
    """The backend time of its batch divided by the batch's size."""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class _Prepared:
    index: int
    source: str
    x: np.ndarray | None  # the 3xHxW float32 input, or its HxWx3 uint8 pixels where they stand for it
    error: str | None

    @property
    def input(self) -> np.ndarray:
        """x of an image that was read: batches() groups only those."""
        if self.x is None:
            raise ValueError(f"{self.source} has no input: {self.error}")
        return self.x


def _prepare(index: int, image: ImageLike, width: int, height: int, mode: str,
             decoder: str, max_pixels: int | None, keep_pixels: bool = False) -> _Prepared:
    """keep_pixels: an image whose preprocessing would change no value (tdn.image.keeps_pixels)
    stays as its decoded uint8 pixels, for a backend that converts them itself."""
    source = describe(image, index)
    try:
        if isinstance(image, np.ndarray) and image.dtype == np.float32:
            x = image  # already a preprocessed 3xHxW network input
        else:
            pixels = decode(image, decoder, max_pixels)
            h, w = pixels.shape[:2]
            if keep_pixels and keeps_pixels(w, h, width, height, mode):
                check_preprocessing(source, w, h, width, height, mode, max_pixels)
                x = pixels
            else:
                x = preprocess_pixels(pixels, width, height, mode, max_pixels, source)
    except ImageError as error:
        return _Prepared(index, source, None, str(error))
    except (OSError, ValueError, EOFError, Image.DecompressionBombError) as error:
        # Anything PIL raises while decoding lazily belongs to this image, not to the run.
        return _Prepared(index, source, None, f"{source}: not a readable image: {error}")
    return _Prepared(index, source, x, None)


def prepared(images: Iterable[ImageLike], width: int, height: int, mode: str,
             workers: int = 4, lookahead: int = 16, decoder: str = "darknet",
             max_pixels: int | None = DEFAULT_MAX_PIXELS, keep_pixels: bool = False) -> Iterator[_Prepared]:
    """Preprocessed images in input order, `lookahead` of them in flight on `workers` threads.
    workers=0 preprocesses in the calling thread. keep_pixels: as _prepare."""
    numbered = enumerate(images)
    if workers == 0:
        for index, image in numbered:
            yield _prepare(index, image, width, height, mode, decoder, max_pixels, keep_pixels)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tdn-decode") as pool:
        pending: deque[Future[_Prepared]] = deque()
        try:
            for index, image in numbered:
                pending.append(pool.submit(_prepare, index, image, width, height, mode, decoder, max_pixels,
                                           keep_pixels))
                if len(pending) > lookahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            # Stopped early (--strict, a closed pipe): drop what has not started.
            for future in pending:
                future.cancel()


def batches(items: Iterable[_Prepared], batch: int) -> Iterator[list[_Prepared]]:
    """Group into runs of at most `batch` consecutive inputs of one shape and type (inputs or
    pixels). A failed item is its own group of one, so it is reported in its place."""
    group: list[_Prepared] = []
    for item in items:
        if item.x is None or (group and (len(group) == batch or item.x.shape != group[0].input.shape
                                         or item.x.dtype != group[0].input.dtype)):
            if group:
                yield group
            group = []
        if item.x is None:
            yield [item]
        else:
            group.append(item)
    if group:
        yield group


def predict_batches(predict: Callable[[np.ndarray], np.ndarray], images: Iterable[ImageLike],
                    width: int, height: int, mode: str = "resize_min", batch: int = 8,
                    workers: int = 4, strict: bool = True, decoder: str = "darknet",
                    max_pixels: int | None = DEFAULT_MAX_PIXELS,
                    predict_pixels: Callable[[np.ndarray], np.ndarray] | None = None) -> Iterator[Prediction]:
    """Run `predict` ((N,C,H,W) -> (N,classes)) over images; one Prediction per image, in order.
    With predict_pixels ((N,H,W,3) uint8 -> predict of their to_float input), images whose
    preprocessing changes no value go to it as their decoded bytes (tdn.image.keeps_pixels).
    An image over max_pixels (tdn.image.check_preprocessing) is refused like an unreadable one.

    strict: raise ImageError at the first unreadable image (after yielding those before it);
    otherwise yield a Prediction carrying the error and go on. decoder: "darknet" (Darknet's
    pixels, tdn.decode) or "pillow" for image files.
    """
    if batch < 1 or workers < 0:
        raise ValueError(f"batch must be >= 1 and workers >= 0, got batch={batch}, workers={workers}")
    if mode not in MODES:
        raise ValueError(f"unknown preprocessing mode '{mode}' (expected one of {', '.join(MODES)})")
    # Two batches ahead: the next one is ready when the current one finishes.
    items = prepared(images, width, height, mode, workers, 2 * batch + workers, decoder, max_pixels,
                     keep_pixels=predict_pixels is not None)
    for group in batches(items, batch):
        if group[0].x is None:
            if strict:
                raise ImageError(group[0].error)
            yield Prediction(group[0].index, group[0].source, None, group[0].error)
            continue
        start = time.perf_counter()
        stacked = np.stack([item.input for item in group])
        run = predict_pixels if predict_pixels is not None and stacked.dtype == np.uint8 else predict
        out = np.asarray(run(stacked), dtype=np.float32)
        seconds = (time.perf_counter() - start) / len(group)
        for item, probabilities in zip(group, out.reshape(len(group), -1), strict=True):
            if not np.isfinite(probabilities).all():
                # An overflow inside the network (fp16, extreme weights): no answer, not a NaN one.
                error = f"{item.source}: the network's output holds NaN or infinite values"
                if strict:
                    raise ImageError(error)
                yield Prediction(item.index, item.source, None, error)
                continue
            yield Prediction(item.index, item.source, probabilities, None, seconds)
