"""BMP as stb_image v2.19 reads it (stbi__bmp_load), asked for three channels.

Where stb differs from Pillow, the difference is reproduced:
- 16- and 32-bit BI_BITFIELDS files with a 40-byte header: stb reads the three masks and
  then skips to the pixel offset *from after them*, so pixels start 12 bytes late (bytes
  past the end read as 0);
- 1-bit rows whose width is a multiple of 8 consume one extra byte (the next row's first
  byte when the row needs no padding);
- mask channels are widened by stb's bit-replication table (stbi__shiftsigned).
Files stb refuses (RLE, OS/2 palettes, zero or over-wide masks, palette indices outside the
palette) raise NotForStb.
"""

from __future__ import annotations

import numpy as np

from tdn.decode.jpeg_header import NotForStb
from tdn.decode.size import check_size

_HEADER_SIZES = (12, 40, 56, 108, 124)
# stbi__shiftsigned's tables: a `bits`-bit value times _MULTIPLY >> _SHIFT spans 0..255.
_MULTIPLY = (0, 0xFF, 0x55, 0x49, 0x11, 0x21, 0x41, 0x81, 0x01)
_SHIFT = (0, 0, 0, 1, 0, 2, 4, 6, 0)


def _u(data: bytes, at: int, size: int) -> int:
    return int.from_bytes(data[at:at + size].ljust(size, b"\x00"), "little")


def decode_bmp(data: bytes) -> np.ndarray:
    """BMP bytes -> HxWx3 uint8, or NotForStb."""
    offset, header_size = _u(data, 10, 4), _u(data, 14, 4)
    if header_size not in _HEADER_SIZES:
        raise NotForStb(f"BMP header of {header_size} bytes")
    if header_size == 12:
        width, height, bpp, at = _u(data, 18, 2), _u(data, 20, 2), _u(data, 24, 2), 26
        compression = 0
    else:
        width, height, bpp = _u(data, 18, 4), _u(data, 22, 4), _u(data, 28, 2)
        compression, at = _u(data, 30, 4), 54
    bottom_up = height < 2**31  # stb: (int) height > 0
    height = height if bottom_up else 2**32 - height
    if _u(data, 26 if header_size != 12 else 22, 2) != 1 or width == 0 or height == 0 or width >= 2**31:
        raise NotForStb("bad BMP header")
    if compression in (1, 2):
        raise NotForStb("RLE-compressed BMP (stb_image does not read it)")
    check_size(width, height)
    masks = (0, 0, 0, 0)
    if header_size in (40, 56):
        at = 14 + header_size
        if bpp in (16, 32):
            if compression == 0:
                masks = (0xFF << 16, 0xFF << 8, 0xFF, 0xFF << 24) if bpp == 32 else (31 << 10, 31 << 5, 31, 0)
            elif compression == 3:
                masks = (_u(data, at, 4), _u(data, at + 4, 4), _u(data, at + 8, 4), 0)
                at += 12  # read, and then not counted when skipping to the pixels
                if masks[0] == masks[1] == masks[2]:
                    raise NotForStb("BMP masks all equal")
            else:
                raise NotForStb(f"BMP compression {compression}")
    elif header_size in (108, 124):
        masks = (_u(data, 54, 4), _u(data, 58, 4), _u(data, 62, 4), _u(data, 66, 4))
        at = 14 + header_size
    if bpp < 16:
        if header_size == 12:
            raise NotForStb("OS/2 BMP palette (stb_image miscounts it)")
        return _flip(_palette_image(data, at, offset, header_size, width, height, bpp), bottom_up)
    # stbi__skip(offset - 14 - header size) from wherever the header reading stopped.
    start = at + offset - 14 - header_size
    if bpp == 24:
        rows = _rows(data, start, height, 3 * width + (-3 * width & 3))
        return _flip(rows[:, :3 * width].reshape(height, width, 3)[:, :, ::-1], bottom_up)
    if bpp == 32 and masks == (0xFF << 16, 0xFF << 8, 0xFF, 0xFF << 24):
        rows = _rows(data, start, height, 4 * width)
        return _flip(rows.reshape(height, width, 4)[:, :, 2::-1], bottom_up)
    if bpp not in (16, 32):
        raise NotForStb(f"{bpp}-bit BMP")
    if not all(masks[:3]):
        raise NotForStb("BMP with a zero colour mask")
    size = bpp // 8
    rows = _rows(data, start, height, size * width + (-size * width & 3))
    words = rows[:, :size * width].reshape(height, width, size).astype(np.uint32)
    pixels = words[:, :, 0].copy()
    for i in range(1, size):
        pixels |= words[:, :, i] << (8 * i)
    return _flip(np.stack([_channel(pixels, mask) for mask in masks[:3]], axis=-1), bottom_up)


def _rows(data: bytes, start: int, height: int, stride: int) -> np.ndarray:
    """height rows of `stride` bytes from `start`; stb reads 0 past the end of the file."""
    chunk = data[start:start + height * stride] if start < len(data) else b""
    return np.frombuffer(chunk.ljust(height * stride, b"\x00"), np.uint8).reshape(height, stride)


def _channel(pixels: np.ndarray, mask: int) -> np.ndarray:
    """stbi__shiftsigned(pixel & mask, high_bit(mask) - 7, bitcount(mask)), as a byte."""
    bits, high = bin(mask).count("1"), mask.bit_length() - 1
    if bits > 8:
        raise NotForStb(f"BMP mask 0x{mask:08X} wider than 8 bits")
    value = pixels & mask
    value = value << (7 - high) if high < 7 else value >> (high - 7)
    value >>= 8 - bits
    return ((value * _MULTIPLY[bits]) >> _SHIFT[bits]).astype(np.uint8)


def _palette_image(data: bytes, at: int, offset: int, header_size: int, width: int, height: int,
                   bpp: int) -> np.ndarray:
    entries = (offset - 14 - header_size) >> 2
    if not 0 < entries <= 256 or bpp not in (1, 4, 8):
        raise NotForStb("BMP palette size or depth stb_image refuses")
    palette = np.frombuffer(data[at:at + 4 * entries].ljust(4 * entries, b"\x00"), np.uint8)
    palette = palette.reshape(entries, 4)[:, 2::-1]
    start = at + 4 * entries + (offset - 14 - header_size - 4 * entries)
    used = (width * bpp + 7) // 8
    pad = -used & 3
    if bpp == 1:
        # stb fetches the next byte after every 8th pixel, even after a row's last one.
        rows = _rows(data, start, height, width // 8 + 1 + pad)
        indices = np.unpackbits(rows[:, :used], axis=1)[:, :width]
    elif bpp == 4:
        rows = _rows(data, start, height, used + pad)[:, :used]
        indices = np.stack([rows >> 4, rows & 15], axis=2).reshape(height, -1)[:, :width]
    else:
        indices = _rows(data, start, height, used + pad)[:, :width]
    if indices.max() >= entries:
        raise NotForStb("BMP palette index past the palette (stb reads undefined memory)")
    return palette[indices]


def _flip(pixels: np.ndarray, bottom_up: bool) -> np.ndarray:
    return np.ascontiguousarray(pixels[::-1] if bottom_up else pixels)
