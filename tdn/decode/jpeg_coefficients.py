"""Quantised DCT blocks and quantisers of a JPEG file, entropy-decoded by libjpeg (jpeglib).

Huffman decoding, progressive refinement and restart intervals are libjpeg's. jpeglib's
object interface allocates nested ctypes arrays for every file and describes the file first
(together about as long as libjpeg's own decoding on a 640x480 image), so its C entry point
is called here directly with NumPy buffers, sized from our own frame header by libjpeg's
block-count rule (jdinput.c). That entry point reads a file: it gets a private temporary
copy of the bytes the header was parsed from, never the caller's path, which could have
changed since and make libjpeg fill more blocks than the buffers hold.

jpeglib ships several libjpeg builds; its default is libjpeg 6b, whose Huffman decoder is the
slower one (dog.jpg: 4.3 ms against libjpeg-turbo 2.1's 3.5 ms; 4000x3000: 75 against 65 ms).
Entropy decoding is lossless, so every build gives the same coefficients: tdn loads the turbo
build for itself (jpeglib.version.set would change the build its other users get) and takes
jpeglib's default where that build is missing.
"""

from __future__ import annotations

import ctypes
import functools
import tempfile
from pathlib import Path

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
    library = libjpeg()
    blocks = [np.empty((rows, columns, 8, 8), np.int16) for rows, columns in block_counts(header)]
    quantisers = np.zeros((4, 8, 8), np.uint16)
    table_numbers = np.zeros(4, np.int16)
    pointers = [array.ctypes.data_as(ctypes.c_void_p) for array in blocks] + [None] * (4 - len(blocks))
    with tempfile.NamedTemporaryFile(suffix=".jpg") as copy:
        copy.write(data)
        copy.flush()
        status = library.read_jpeg_dct(copy.name.encode(), *pointers, quantisers.ctypes.data_as(ctypes.c_void_p),
                                       table_numbers.ctypes.data_as(ctypes.c_void_p))
    if status != 1:
        raise NotForStb("libjpeg cannot read its coefficients")
    return [(array, quantisers[number]) for array, number in zip(blocks, table_numbers)]


TURBO_BUILD = "turbo210"  # jpeglib's name for its libjpeg-turbo 2.1 build


@functools.cache  # one handle per process, like the import that loads it
def libjpeg() -> ctypes.CDLL:
    """jpeglib's libjpeg-turbo build, else the build jpeglib loads by default."""
    try:  # on first use: it loads libjpeg through ctypes
        from jpeglib import cjpeglib
        from jpeglib._bind import CJpegLib
    except ImportError as error:  # entry points of jpeglib 1.0, not its documented interface
        raise NotForStb(f"this jpeglib lacks the coefficient reader tdn calls ({error})") from None
    turbo = [path for folder in cjpeglib.__path__ for path in sorted(Path(folder).glob(f"cjpeglib_{TURBO_BUILD}.*"))
             if path.suffix in (".so", ".dll", ".pyd")]
    if turbo:
        try:
            return ctypes.CDLL(str(turbo[0]))
        except OSError:  # a build for another platform, say: jpeglib's own choice then
            pass
    return CJpegLib.get()
