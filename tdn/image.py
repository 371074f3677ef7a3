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

ImageLike = str | Path | Image.Image | np.ndarray
MODES = ("resize_min", "letterbox", "stretch", "crop")


def decode(image: ImageLike, decoder: str = "darknet") -> np.ndarray:
    """Any supported image as 8-bit RGB, HxWx3. Files: decoder "darknet" gives the pixels of
    Darknet's decoder (tdn.decode), "pillow" Pillow's; both ignore EXIF orientation."""
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder '{decoder}' (expected one of {', '.join(DECODERS)})")
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ImageError(f"array image: expected HxWx3 uint8, got {image.shape} {image.dtype}")
        return image
    if isinstance(image, Image.Image):
        return _rgb(image, "image")
    path = Path(image)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageError(f"{path}: cannot read image: {error.strerror or error}") from None
    try:
        exact = darknet_pixels(path, data) if decoder == "darknet" else None
        if isinstance(exact, np.ndarray):
            return exact
        with Image.open(io.BytesIO(data)) as opened:
            pixels = _rgb(opened, str(path))
        if exact is not None:
            fell_back(path, exact)
        return pixels
    except UnidentifiedImageError:
        # PIL's message names the in-memory buffer, a different address each run.
        raise ImageError(f"{path}: not a readable image: unknown image format") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{path}: not a readable image: {error}") from None


def _rgb(image: Image.Image, source: str) -> np.ndarray:
    # Like stb_image asked for 3 channels: palette expanded, grey replicated, alpha dropped.
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError(f"{source}: empty image")
    return array


def to_float(pixels: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 -> 3xHxW float32, divided by 255 in double as Darknet does."""
    return (pixels.transpose(2, 0, 1) / 255.0).astype(np.float32)


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
    if w < h:
        new_w, new_h = size, (h * size) // w
    else:
        new_w, new_h = (w * size) // h, size
    if (new_w, new_h) == (w, h):
        return image
    return resize(image, new_w, new_h)


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Fit inside width x height, aspect kept, centred on 0.5 grey (letterbox_image)."""
    channels, h, w = image.shape
    if np.float32(width) / np.float32(w) < np.float32(height) / np.float32(h):
        new_w, new_h = width, (h * width) // w
    else:
        new_w, new_h = (w * height) // h, height
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


def preprocess_pixels(pixels: np.ndarray, width: int, height: int, mode: str) -> np.ndarray:
    """Decoded HxWx3 uint8 -> the 3xHxW float32 network input for one mode.

    resize_min returns an image whose shorter side is min(width, height)'s Darknet choice
    (the network's width), so the network must run at that image's size.
    """
    image = to_float(pixels)
    if mode == "letterbox":
        return letterbox(image, width, height)
    if mode == "stretch":
        return resize(image, width, height)
    if mode == "resize_min":
        return resize_min(image, width)
    if mode == "crop":
        return center_crop(resize_min(image, width), width, height)
    raise ImageError(f"unknown preprocessing mode '{mode}' (expected one of {', '.join(MODES)})")
