"""PNG and BMP as stb_image v2.19 reads them (three channels out), each rule on a file built
byte by byte here, so the expected pixels follow from the rule and not from a decoder."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tdn.decode import darknet_pixels
from tdn.decode.bmp import decode_bmp
from tdn.decode.jpeg_header import NotForStb
from tdn.decode.png import decode_png


def _png(width: int, height: int, depth: int, colour: int, rows: list[bytes], extra: bytes = b"") -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + row for row in rows))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


SAMPLES16 = np.array([0x0000, 0x00FF, 0x0100, 0x12FF, 0x7F80, 0xFFFF, 0x80FF, 0x017F], ">u2")


@pytest.mark.parametrize("colour, channels", [(0, 1), (4, 2), (2, 3), (6, 4)])
def test_png_16_bit_keeps_the_high_byte_and_drops_alpha(colour, channels):
    values = np.repeat(SAMPLES16[:, None], channels, axis=1)
    if channels in (2, 4):
        values[:, -1] = 0x0101  # an alpha that would darken anything composited
    data = _png(8, 1, 16, colour, [values.astype(">u2").tobytes()])
    expected = np.repeat((SAMPLES16.astype(int) >> 8)[:, None], 3, axis=1)
    assert np.array_equal(decode_png(data)[0], expected)
    assert np.array_equal(darknet_pixels("x.png", data)[0], expected)


@pytest.mark.parametrize("depth, scale", [(1, 255), (2, 85), (4, 17)])
def test_png_low_bit_grey_scales_to_full_range(depth, scale):
    levels = np.arange(2**depth)
    packed = np.packbits(np.unpackbits(levels.astype(np.uint8)[:, None], axis=1)[:, 8 - depth:].ravel())
    pixels = decode_png(_png(len(levels), 1, depth, 0, [packed.tobytes()]))
    assert pixels.shape == (1, len(levels), 3)
    assert np.array_equal(pixels[0, :, 1], levels * scale)


def test_png_palette_with_transparency_expands_without_compositing():
    palette = bytes([10, 20, 30, 200, 100, 50])
    extra = (struct.pack(">I", 6) + b"PLTE" + palette + struct.pack(">I", zlib.crc32(b"PLTE" + palette))
             + struct.pack(">I", 2) + b"tRNS" + b"\x00\x80" + struct.pack(">I", zlib.crc32(b"tRNS\x00\x80")))
    pixels = decode_png(_png(2, 1, 8, 3, [b"\x00\x01"], extra))
    assert pixels.tolist() == [[[10, 20, 30], [200, 100, 50]]]


def test_png_rgba_and_grey():
    rgba = bytes([9, 99, 199, 0, 255, 128, 1, 7])
    assert decode_png(_png(2, 1, 8, 6, [rgba])).tolist() == [[[9, 99, 199], [255, 128, 1]]]
    assert decode_png(_png(2, 1, 8, 0, [b"\x05\xfa"])).tolist() == [[[5, 5, 5], [250, 250, 250]]]


def _bmp(width: int, height: int, bpp: int, pixel_rows: bytes, header_size: int = 40, compression: int = 0,
         extra: bytes = b"", palette: bytes = b"") -> bytes:
    offset = 14 + header_size + len(extra) + len(palette)
    info = struct.pack("<IiiHHIIiiII", header_size, width, height, 1, bpp, compression, len(pixel_rows),
                       2835, 2835, len(palette) // 4, 0)
    info = info.ljust(header_size, b"\x00")
    return (b"BM" + struct.pack("<IHHI", offset + len(pixel_rows), 0, 0, offset) + info + extra + palette
            + pixel_rows)


def test_bmp_24_bit_bottom_up_and_top_down():
    rows = bytes([1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0])  # BGR, 2 px + 2 pad
    bottom_up = decode_bmp(_bmp(2, 2, 24, rows))
    assert bottom_up.tolist() == [[[9, 8, 7], [12, 11, 10]], [[3, 2, 1], [6, 5, 4]]]
    assert np.array_equal(decode_bmp(_bmp(2, -2, 24, rows)), bottom_up[::-1])
    assert np.array_equal(bottom_up, np.asarray(Image.open(io.BytesIO(_bmp(2, 2, 24, rows))).convert("RGB")))


def test_bmp_16_bit_channels_widen_by_bit_replication():
    values = np.arange(32, dtype=np.uint16)
    words = values << 10 | values << 5 | values  # 5-5-5, one pixel per level
    pixels = decode_bmp(_bmp(32, 1, 16, words.astype("<u2").tobytes()))
    assert np.array_equal(pixels[0, :, 0], values << 3 | values >> 2)
    masks = struct.pack("<III", 0xF800, 0x07E0, 0x001F)  # 5-6-5 bitfields
    six = np.arange(64, dtype=np.uint16)
    pixels = decode_bmp(_bmp(64, 1, 16, (six << 5).astype("<u2").tobytes(), compression=3, extra=masks))
    # stb's quirk: with a 40-byte header the pixels start 12 bytes (6 pixels) after the offset.
    assert np.array_equal(pixels[0, :58, 1], (six[6:] << 2 | six[6:] >> 4))
    assert np.array_equal(pixels[0, 58:], np.zeros((6, 3)))  # read past the end: zeros


def test_bmp_1_bit_rows_of_whole_bytes_consume_one_more_byte():
    palette = bytes([0, 0, 0, 0, 255, 255, 255, 0])
    rows = bytes([0b10000000, 0xAA, 0xBB, 0xCC, 0b01000000, 0, 0, 0])  # 8 px, 1 byte + 3 pad per row
    pixels = decode_bmp(_bmp(8, 2, 1, rows, palette=palette))
    # Row 1 (stored first) reads byte 0; stb then fetches byte 1 and skips 3, so row 0 starts at byte 5.
    assert pixels[1, :, 0].tolist() == [255, 0, 0, 0, 0, 0, 0, 0]
    assert pixels[0, :, 0].tolist() == [0] * 8
    pillow = np.asarray(Image.open(io.BytesIO(_bmp(8, 2, 1, rows, palette=palette))).convert("RGB"))
    assert pillow[0, 1, 0] == 255  # Pillow reads the row where it is


def test_bmp_palettes_and_32_bit():
    palette = bytes([30, 20, 10, 0, 60, 50, 40, 0])
    assert decode_bmp(_bmp(3, 1, 8, bytes([1, 0, 1, 0]), palette=palette)).tolist() == \
        [[[40, 50, 60], [10, 20, 30], [40, 50, 60]]]
    assert decode_bmp(_bmp(3, 1, 4, bytes([0x10, 0x10, 0, 0]), palette=palette)).tolist() == \
        [[[40, 50, 60], [10, 20, 30], [40, 50, 60]]]
    with pytest.raises(NotForStb, match="palette index"):
        decode_bmp(_bmp(1, 1, 8, bytes([5, 0, 0, 0]), palette=palette))
    bgra = bytes([1, 2, 3, 0, 4, 5, 6, 0])
    assert decode_bmp(_bmp(2, 1, 32, bgra)).tolist() == [[[3, 2, 1], [6, 5, 4]]]


def test_bmp_rle_is_refused_as_stb_refuses_it():
    with pytest.raises(NotForStb, match="RLE"):
        decode_bmp(_bmp(2, 1, 8, b"\x02\x00\x00\x01", compression=1, palette=bytes(8)))
