"""Quantised DCT blocks and quantisers of a JPEG file, entropy-decoded by libjpeg (jpeglib).

Huffman decoding, progressive refinement and restart intervals are libjpeg's. jpeglib's
object interface allocates nested ctypes arrays for every file and describes the file first
(together about as long as libjpeg's own decoding on a 640x480 image), so its C entry point
is called here directly with NumPy buffers, sized from our own frame header by libjpeg's
block-count rule (jdinput.c). That entry point reads a file: it gets a private temporary
copy of the bytes the header was parsed from, never the caller's path, which could have
changed since and make libjpeg fill more blocks than the buffers hold.
"""

from __future__ import annotations

import ctypes
import tempfile

import numpy as np

from tdn.decode.jpeg_header import JpegHeader, NotForStb


def block_counts(header: JpegHeader) -> np.ndarray:
    """libjpeg's (height_in_blocks, width_in_blocks) per component."""
    h_max = max(c.h for c in header.components)
    v_max = max(c.v for c in header.components)
    return np.array([[-(-header.height * c.v // (8 * v_max)), -(-header.width * c.h // (8 * h_max))]
                     for c in header.components])


def quantised_blocks(data: bytes, header: JpegHeader) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per component, in frame order: int16 blocks (block rows, block columns, 8, 8) and the
    uint16 quantiser (8, 8), both indexed [vertical frequency, horizontal frequency]."""
    try:  # on first use: it loads libjpeg through ctypes
        from jpeglib._bind import CJpegLib
    except ImportError as error:  # an entry point of jpeglib 1.0, not its documented interface
        raise NotForStb(f"this jpeglib lacks the coefficient reader tdn calls ({error})") from None

    blocks = [np.empty((rows, columns, 8, 8), np.int16) for rows, columns in block_counts(header)]
    quantisers = np.zeros((4, 8, 8), np.uint16)
    table_numbers = np.zeros(4, np.int16)
    pointers = [array.ctypes.data_as(ctypes.c_void_p) for array in blocks] + [None] * (4 - len(blocks))
    with tempfile.NamedTemporaryFile(suffix=".jpg") as copy:
        copy.write(data)
        copy.flush()
        # CJpegLib.get(): the libjpeg build jpeglib has loaded (its default unless the host chose one).
        status = CJpegLib.get().read_jpeg_dct(copy.name.encode(), *pointers, quantisers.ctypes.data_as(ctypes.c_void_p),
                                              table_numbers.ctypes.data_as(ctypes.c_void_p))
    if status != 1:
        raise NotForStb("libjpeg cannot read its coefficients")
    return [(array, quantisers[number]) for array, number in zip(blocks, table_numbers)]
