"""Dequantised DCT blocks of a JPEG file, entropy-decoded by libjpeg (through jpeglib).

Huffman decoding, progressive refinement and restart intervals are libjpeg's; what is
stb_image's own is how it dequantises: (short)(coefficient * quantiser), truncated to int16.

jpeglib.read_dct first reads the whole file once just to describe it; the frame header
already gives that description, so a jpeglib.DCTJPEG is built from it and loaded directly,
which reads the file once. Its block counts are libjpeg's own rule (jdinput.c), the
sizes jpeglib fills.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tdn.decode.jpeg_header import JpegHeader, NotForStb

_COLOUR_SPACE = {1: "JCS_GRAYSCALE", 3: "JCS_YCbCr", 4: "JCS_CMYK"}  # only the count matters here


def block_counts(header: JpegHeader) -> np.ndarray:
    """libjpeg's (height_in_blocks, width_in_blocks) per component."""
    h_max = max(c.h for c in header.components)
    v_max = max(c.v for c in header.components)
    return np.array([[-(-header.height * c.v // (8 * v_max)), -(-header.width * c.h // (8 * h_max))]
                     for c in header.components])


def dequantised_blocks(path: str | Path, data: bytes, header: JpegHeader) -> list[np.ndarray]:
    """One int16 array (block rows, block columns, 8, 8) per component, in frame order, each
    block indexed [vertical frequency, horizontal frequency]."""
    import jpeglib  # imported on first use: it loads libjpeg through ctypes

    count = len(header.components)
    jpeg = jpeglib.DCTJPEG(
        path=str(path), content=data, height=header.height, width=header.width,
        block_dims=block_counts(header),
        samp_factor=np.array([[c.v, c.h] for c in header.components]),  # jpeglib's order: (V, H)
        markers=[], huffmans=[], jpeg_color_space=jpeglib.Colorspace[_COLOUR_SPACE[count]],
        progressive_mode=header.progressive, num_scans=0,
        Y=None, Cb=None, Cr=None, K=None, qt=None, quant_tbl_no=None)
    try:
        jpeg.load()
    except Exception as error:  # jpeglib raises plain Exceptions (IOError) for libjpeg errors
        raise NotForStb(f"libjpeg cannot read its coefficients: {error}") from None
    arrays = [jpeg.Y, jpeg.Cb, jpeg.Cr, jpeg.K][:count]
    # In int16 arithmetic the product wraps to exactly stb's (short)(coefficient * quantiser).
    return [np.multiply(array, jpeg.qt[number].astype(np.int16), dtype=np.int16)
            for array, number in zip(arrays, jpeg.quant_tbl_no)]
