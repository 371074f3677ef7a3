"""Image files to 8-bit RGB exactly as Darknet sees them: stb_image v2.19's pixels.

Darknet decodes with stb_image, asking for three channels. JPEG is reproduced here from
stb's arithmetic (entropy decoding by libjpeg through jpeglib), BMP from stb's reading
rules, PNG by Pillow's samples converted with stb's rules. EXIF orientation is ignored, as
stb ignores it. For any other file the caller decodes with Pillow and says so (fell_back).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from tdn.decode.bmp import decode_bmp
from tdn.decode.jpeg import decode_jpeg
from tdn.decode.jpeg_header import NotForStb
from tdn.decode.png import SIGNATURE as PNG_SIGNATURE
from tdn.decode.png import decode_png

DECODERS = ("darknet", "pillow")


class DecoderWarning(UserWarning):
    """An image decoded by Pillow where Darknet's decoder was asked for."""


def darknet_pixels(path: str | Path, data: bytes) -> np.ndarray | str:
    """HxWx3 uint8 as stb_image decodes the file, or why this package cannot say."""
    try:
        if data[:2] == b"\xff\xd8":
            return decode_jpeg(data)
        if data[:8] == PNG_SIGNATURE:
            return decode_png(data)
        if data[:2] == b"BM":
            return decode_bmp(data)
    except NotForStb as reason:
        return str(reason)
    return "not a JPEG, PNG or BMP file"


def fell_back(path: str | Path, reason: str) -> None:
    """The one-line warning for an image Pillow decoded instead."""
    warnings.warn(f"{path}: decoded with Pillow, not as Darknet does ({reason}); its numbers may "
                  "differ from Darknet's in the last digits", DecoderWarning, stacklevel=3)
