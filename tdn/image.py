"""Image decoding and Darknet's preprocessing modes, reproduced to the bit in float32.

Darknet works on planar float images in [0, 1]: load_image_color decodes to 8-bit RGB
(grey replicated, alpha dropped, EXIF orientation ignored) and divides by 255 in double.
Its resize_image is a two-pass bilinear filter written with plain float arithmetic; the
NumPy code below performs the same float32 operations in the same order, so results match
bit for bit.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from tdn.decode import DECODERS, darknet_pixels, fell_back
from tdn.errors import ImageError
from tdn.files import open_regular
from tdn.limits import DEFAULT_MAX_PIXELS

ImageLike = str | Path | Image.Image | np.ndarray
MODES = ("resize_min", "letterbox", "stretch", "crop")

MAX_INPUT_AREA = 16
"""In resize_min mode the network runs at the image's aspect ratio: its input may hold at most
this many times the cfg's input pixels (a 16:1 panorama on a square network), so that the
network's buffers stay within that factor of those at its cfg's size."""


class ImageTooLargeError(ImageError):
    """An image whose decoding or preprocessing would allocate more than the stated bound."""


def _limit(max_pixels: int | None) -> int | None:
    """max_pixels, or Pillow's decompression-bomb limit where that is lower (None: no limit)."""
    pillow = Image.MAX_IMAGE_PIXELS
    limits = [limit for limit in (max_pixels, pillow) if limit is not None]
    return min(limits) if limits else None


def check_decoded_size(source: str, width: int, height: int, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
    """ImageTooLargeError before decoding an image of width x height pixels over the bound."""
    limit = _limit(max_pixels)
    if limit is not None and width * height > limit:
        raise ImageTooLargeError(f"{source}: {width}x{height} pixels is more than the {limit} allowed "
                                 f"(max_pixels, --max-pixels)")


def decode(image: ImageLike, decoder: str = "darknet", max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Any supported image as 8-bit RGB, HxWx3. Files: decoder "darknet" gives the pixels of
    Darknet's decoder (tdn.decode), "pillow" Pillow's; both ignore EXIF orientation.
    ImageTooLargeError, from the file's header, for one of more than max_pixels pixels
    (None: Pillow's limit only)."""
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder '{decoder}' (expected one of {', '.join(DECODERS)})")
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ImageError(f"array image: expected HxWx3 uint8, got {image.shape} {image.dtype}")
        return image
    if isinstance(image, Image.Image):
        check_decoded_size("image", *image.size, max_pixels)
        return _rgb(image, "image")
    path = Path(image)
    try:
        with open_regular(path, "image", ImageError) as handle:
            data = handle.read()
        # The header's size is checked before either decoder allocates the image.
        with Image.open(io.BytesIO(data)) as opened:
            check_decoded_size(str(path), *opened.size, max_pixels)
            exact = darknet_pixels(path, data) if decoder == "darknet" else None
            if isinstance(exact, np.ndarray):
                return exact
            pixels = _rgb(opened, str(path))
        if exact is not None:
            fell_back(path, exact)
        return pixels
    except UnidentifiedImageError:
        # PIL's message names the in-memory buffer, a different address each run.
        raise ImageError(f"{path}: not a readable image: unknown image format") from None
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"{path}: {error}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageError(f"{path}: not a readable image: {error}") from None


def _rgb(image: Image.Image, source: str) -> np.ndarray:
    # Like stb_image asked for 3 channels: palette expanded, grey replicated, alpha dropped.
    # 16-bit grey goes to 8 bits through Pillow's integer point mapping (no float copy).
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError(f"{source}: empty image")
    return array


# Darknet divides each byte by 255 in double and stores a float: a table of the 256 results
# gives the same float32 values without a float64 copy of the image (the CUDA backend uploads
# it for its uint8 input kernel, so images decoded there come out the same).
BYTE_TO_FLOAT = (np.arange(256) / 255.0).astype(np.float32)


def to_float(pixels: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 -> 3xHxW float32, divided by 255 in double as Darknet does. By blocks of
    about a million pixels: a table lookup makes an 8-byte index of each byte it reads."""
    height, width, _ = pixels.shape
    image = np.empty((3, height, width), np.float32)
    rows = max(1, 2**20 // width)
    for top in range(0, height, rows):
        image[:, top:top + rows] = BYTE_TO_FLOAT[pixels[top:top + rows]].transpose(2, 0, 1)
    return image


def pixels_to_input(pixels: np.ndarray) -> np.ndarray:
    """A batch of decoded images (N, H, W, C) uint8 -> the network input (N, C, H, W) float32, each
    image as to_float makes it."""
    if pixels.dtype != np.uint8 or pixels.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) uint8 pixels, got {pixels.dtype} {pixels.shape}")
    return np.ascontiguousarray(BYTE_TO_FLOAT[pixels].transpose(0, 3, 1, 2))


def keeps_pixels(w: int, h: int, width: int, height: int, mode: str) -> bool:
    """Whether preprocess_pixels of a w x h image gives exactly to_float of its pixels, so that the
    decoded bytes themselves can stand for the network input: an image at the network's size in
    every mode (a resize to its own size moves no value; crop also resizes the shorter side to the
    width first), and in resize_min one whose shorter side is already the network's width."""
    kept_by_resize_min = _resized_size(w, h, width) == (w, h)
    if mode == "resize_min":
        return kept_by_resize_min
    return (w, h) == (width, height) and (mode != "crop" or kept_by_resize_min)


def _scale(src: int, dst: int) -> np.float32:
    if dst == 1:
        return np.float32(0)
    return np.float32(src - 1) / np.float32(dst - 1)


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Darknet's resize_image on a 3xHxW float32 image."""
    channels, in_h, in_w = image.shape
    # First pass: along x into a (channels, in_h, width) image.
    columns = np.arange(width)
    sx = columns.astype(np.float32) * _scale(in_w, width)
    ix = np.minimum(sx.astype(np.int64), in_w - 1)
    dx = sx - ix.astype(np.float32)
    right = np.minimum(ix + 1, in_w - 1)
    part = (np.float32(1) - dx) * image[:, :, ix] + dx * image[:, :, right]
    last = (columns == width - 1) | (in_w == 1)
    part[:, :, last] = image[:, :, in_w - 1:in_w]
    # Second pass: along y; the last row (or a one-row source) takes only the first term.
    rows = np.arange(height)
    sy = rows.astype(np.float32) * _scale(in_h, height)
    iy = np.minimum(sy.astype(np.int64), in_h - 1)
    dy = sy - iy.astype(np.float32)
    below = np.minimum(iy + 1, in_h - 1)
    resized = (np.float32(1) - dy)[:, None] * part[:, iy, :]
    add = (rows != height - 1) & (in_h != 1)
    resized[:, add, :] += dy[add, None] * part[:, below[add], :]
    return resized.astype(np.float32, copy=False)


def resize_min(image: np.ndarray, size: int) -> np.ndarray:
    """Shorter side to `size`, aspect kept (Darknet's resize_min; integer division)."""
    _, h, w = image.shape
    new_w, new_h = _resized_size(w, h, size)
    if (new_w, new_h) == (w, h):
        return image
    return resize(image, new_w, new_h)


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Fit inside width x height, aspect kept, centred on 0.5 grey (letterbox_image)."""
    channels, h, w = image.shape
    new_w, new_h = _letterbox_size(w, h, width, height)
    boxed = np.full((channels, height, width), 0.5, np.float32)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    boxed[:, top:top + new_h, left:left + new_w] = resize(image, new_w, new_h)
    return boxed


def center_crop(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """crop_image at the centre; coordinates outside the image clamp to its edge."""
    _, h, w = image.shape
    dy, dx = (h - height) // 2, (w - width) // 2
    rows = np.clip(np.arange(height) + dy, 0, h - 1)
    columns = np.clip(np.arange(width) + dx, 0, w - 1)
    return np.ascontiguousarray(image[:, rows][:, :, columns])


def _resized_size(w: int, h: int, size: int) -> tuple[int, int]:
    """resize_min's output size: shorter side to `size` (integer division, as Darknet)."""
    return (size, (h * size) // w) if w < h else ((w * size) // h, size)


def _letterbox_size(w: int, h: int, width: int, height: int) -> tuple[int, int]:
    if np.float32(width) / np.float32(w) < np.float32(height) / np.float32(h):
        return width, (h * width) // w
    return (w * height) // h, height


def _arrays(w: int, h: int, width: int, height: int, mode: str) -> list[tuple[str, int, int]]:
    """(what, width, height) of each 3-channel float32 array preprocessing allocates, from the
    decoded size alone; a resize from w x h to W x H first makes a (h, W) pass."""
    def resize_arrays(new_w: int, new_h: int) -> list[tuple[str, int, int]]:
        return [("the horizontal resize pass", new_w, h), ("the resized image", new_w, new_h)]

    arrays = [("the float image", w, h)]
    if mode == "stretch":
        return arrays + resize_arrays(width, height)
    if mode == "letterbox":
        new_w, new_h = _letterbox_size(w, h, width, height)
        return arrays + resize_arrays(new_w, new_h) + [("the letterbox", width, height)]
    new_w, new_h = _resized_size(w, h, width)
    arrays += resize_arrays(new_w, new_h) if (new_w, new_h) != (w, h) else []
    return arrays + ([("the crop", width, height)] if mode == "crop" else [])


def check_preprocessing(source: str, w: int, h: int, width: int, height: int, mode: str,
                        max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
    """ImageTooLargeError, before any allocation, for an image whose preprocessing would make an
    array of more than max_pixels pixels, one resized to nothing, or (resize_min) a network
    input of more than MAX_INPUT_AREA times the cfg's."""
    if mode not in MODES:
        raise ImageError(f"unknown preprocessing mode '{mode}' (expected one of {', '.join(MODES)})")
    limit = _limit(max_pixels)
    for what, aw, ah in _arrays(w, h, width, height, mode):
        if aw < 1 or ah < 1:
            raise ImageTooLargeError(f"{source}: {w}x{h} pixels is too thin for {mode}: "
                                     f"{what} would be {aw}x{ah}")
        if limit is not None and aw * ah > limit:
            raise ImageTooLargeError(f"{source}: {w}x{h} pixels: in {mode} mode {what} would be "
                                     f"{aw}x{ah}, more than the {limit} pixels allowed (max_pixels, --max-pixels)")
    if mode == "resize_min":
        new_w, new_h = _resized_size(w, h, width)
        if new_w * new_h > MAX_INPUT_AREA * width * height:
            raise ImageTooLargeError(
                f"{source}: {w}x{h} pixels: resize_min would run the network at {new_w}x{new_h}, more "
                f"than {MAX_INPUT_AREA} times its {width}x{height} (letterbox, stretch or crop it instead)")


def preprocess_pixels(pixels: np.ndarray, width: int, height: int, mode: str,
                      max_pixels: int | None = DEFAULT_MAX_PIXELS, source: str = "image") -> np.ndarray:
    """Decoded HxWx3 uint8 -> the 3xHxW float32 network input for one mode.

    resize_min returns an image whose shorter side is min(width, height)'s Darknet choice
    (the network's width), so the network must run at that image's size. The bounds of
    check_preprocessing are checked first.
    """
    check_preprocessing(source, pixels.shape[1], pixels.shape[0], width, height, mode, max_pixels)
    image = to_float(pixels)
    if mode == "letterbox":
        return letterbox(image, width, height)
    if mode == "stretch":
        return resize(image, width, height)
    if mode == "resize_min":
        return resize_min(image, width)
    return center_crop(resize_min(image, width), width, height)
