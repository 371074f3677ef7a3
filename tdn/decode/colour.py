"""stb_image's colour conversions to RGB, in its fixed-point arithmetic.

YCbCr -> RGB (stbi__YCbCr_to_RGB_row): each channel is ((y << 20) + (1 << 19) + terms) >> 20,
clamped to 0..255, with the Cb term of green truncated to a multiple of 65536. Because
y << 20 is a whole multiple of the shift, the channel is y plus a term that depends on the
chroma alone, so the terms are tabulated once (256 entries, 65536 for green).
Darknet asks for three channels, for which stb's SSE2 colour loop does not run (it needs
four), so the scalar formula is the one that counts.
"""

from __future__ import annotations

from functools import cache

import numpy as np

_BAND = 65536  # pixels per band


def _fixed(x: float) -> int:
    # stbi__float2fixed: ((int)(x * 4096.0f + 0.5f)) << 8, in float arithmetic.
    return int(np.float32(x) * np.float32(4096) + np.float32(0.5)) << 8


@cache
def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    chroma = np.arange(256, dtype=np.int64) - 128
    rounding = 1 << 19
    red = (rounding + chroma * _fixed(1.40200)) >> 20
    blue = (rounding + chroma * _fixed(1.77200)) >> 20
    cb, cr = np.meshgrid(chroma, chroma, indexing="ij")
    cb_term = (cb * -_fixed(0.34414)) & ~0xFFFF  # the '& 0xffff0000' of stb's green
    green = (rounding + cr * -_fixed(0.71414) + cb_term) >> 20
    return red.astype(np.int16), green.reshape(-1).astype(np.int16), blue.astype(np.int16)


def ycbcr_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Three HxW uint8 planes -> HxWx3 uint8 RGB (into out if given)."""
    red, green, blue = _tables()
    if out is None:
        out = np.empty(y.shape + (3,), np.uint8)
    # A band of rows at a time keeps the temporaries in cache.
    rows = max(1, _BAND // max(1, y.shape[1]))
    for top in range(0, y.shape[0], rows):
        band = slice(top, top + rows)
        luma = y[band].astype(np.int16)
        both = np.left_shift(cb[band], 8, dtype=np.uint16)
        both |= cr[band]
        term = np.empty_like(luma)
        for channel, table, index in ((0, red, cr[band]), (1, green, both), (2, blue, cb[band])):
            # take with mode="wrap" skips the bounds-checked, buffered path; every index is in range.
            np.take(table, index, out=term, mode="wrap")
            term += luma
            np.clip(term, 0, 255, out=out[band, :, channel], casting="unsafe")
    return out


def blinn(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """stbi__blinn_8x8: x * y / 255, rounded, for uint8 arrays."""
    t = x.astype(np.uint32) * y + 128
    return ((t + (t >> 8)) >> 8).astype(np.uint8)


def cmyk_to_rgb(c: np.ndarray, m: np.ndarray, y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Adobe transform 0: each of the first three channels scaled by the fourth (not inverted)."""
    return np.stack([blinn(c, k), blinn(m, k), blinn(y, k)], axis=-1)


def ycck_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Adobe transform 2: YCbCr -> RGB, then each channel inverted and scaled by the fourth."""
    rgb = ycbcr_to_rgb(y, cb, cr)
    return blinn(255 - rgb, k[..., None])
