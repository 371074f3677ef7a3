"""Dequantised DCT blocks of a JPEG file, entropy-decoded by libjpeg (through jpeglib).

Huffman decoding, progressive refinement and restart intervals are libjpeg's; what is
stb_image's own is how it dequantises: (short)(coefficient * quantiser), truncated to int16.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tdn.decode.jpeg_header import NotForStb


def dequantised_blocks(path: str | Path, count: int) -> list[np.ndarray]:
    """One int16 array (block rows, block columns, 8, 8) per component, in frame order, each
    block indexed [vertical frequency, horizontal frequency]."""
    import jpeglib  # imported on first use: it loads libjpeg through ctypes

    try:
        jpeg = jpeglib.read_dct(str(path))
        arrays = [jpeg.Y, jpeg.Cb, jpeg.Cr, jpeg.K][:count]
        tables, numbers = jpeg.qt, jpeg.quant_tbl_no
    except Exception as error:  # jpeglib raises plain Exceptions for libjpeg errors
        raise NotForStb(f"libjpeg cannot read its coefficients: {error}") from None
    if any(array is None for array in arrays) or len(numbers) < count:
        raise NotForStb("libjpeg gives fewer components than the frame header lists")
    return [(array.astype(np.int32) * tables[number].astype(np.int32)).astype(np.int16)
            for array, number in zip(arrays, numbers)]
