"""stb_image's integer 8x8 inverse DCT, as its SSE2 kernel (stbi__idct_simd) computes it.

Darknet is built for x86-64, where stb_image always takes the SSE2 path. That kernel is the
scalar fixed-point IDCT (constants scaled by 4096, rounding shifts of 10 and 17) with two
16-bit effects the scalar code lacks: the sums row0+row4, row0-row4, row1+row7 and row3+row5
wrap in int16, and the first pass's outputs saturate to int16.

Each pass is linear with integer weights, so between its rounding shifts it is one 8x8
integer matrix. Where no 16-bit effect can occur (every dequantised coefficient and every
pass-1 output within +-16383: no product or sum wraps, no output saturates, no 32-bit sum
overflows), float64 matrix products compute the integer sums exactly (all values are
integers, or integers over powers of two, far below 2**53), and flooring reproduces the
shifts: that is the fast path, whole bands of blocks at a time through BLAS. Blocks outside
that range take the kernel's own int16/int32 operations, in which NumPy wraps exactly as
SSE2 does.
"""

from __future__ import annotations

import numpy as np

# Blocks per band of the float path: the band's three float64 arrays (3 x 256 KiB) stay in L2.
_BAND_BLOCKS = 512
# Pass inputs within +-_EXACT make the float path exact (see the module docstring).
_EXACT = 16383


def _fixed(x: float) -> int:
    # stbi__f2f: (int)(x * 4096 + 0.5) with x a float literal; int() truncates toward zero like C.
    return int(float(np.float32(x)) * 4096 + 0.5)


_C541 = _fixed(0.5411961)
_CM1847 = _fixed(-1.847759065)
_C765 = _fixed(0.765366865)
_C1175 = _fixed(1.175875602)
_CM0899 = _fixed(-0.899976223)
_CM2562 = _fixed(-2.562915447)
_C0298 = _fixed(0.298631336)
_C2053 = _fixed(2.053119869)
_C3072 = _fixed(3.072711026)
_C1501 = _fixed(1.501321110)
_CM1961 = _fixed(-1.961570560)
_CM0390 = _fixed(-0.390180644)

_PASS1_BIAS = 512
_PASS2_BIAS = 65536 + (128 << 17)  # rounding, plus the +128 level shift


def _pass(rows: list[np.ndarray], bias: int, shift: int) -> list[np.ndarray]:
    """One 1-D pass over eight int16 vectors (dct_pass): eight int16 vectors, saturated."""
    r0, r1, r2, r3, r4, r5, r6, r7 = rows
    w = [row.astype(np.int32) for row in rows]
    # Even part. The products are the SSE2 multiply-adds: exact 32-bit.
    t2 = w[2] * _C541 + w[6] * (_C541 + _CM1847)
    t3 = w[2] * (_C541 + _C765) + w[6] * _C541
    t0 = (r0 + r4).astype(np.int32) << 12  # int16 sum, wraps like _mm_add_epi16
    t1 = (r0 - r4).astype(np.int32) << 12
    x0, x3 = t0 + t3, t0 - t3
    x1, x2 = t1 + t2, t1 - t2
    # Odd part.
    y0 = w[7] * (_CM1961 + _C0298) + w[3] * _CM1961
    y2 = w[7] * _CM1961 + w[3] * (_CM1961 + _C3072)
    y1 = w[5] * (_CM0390 + _C2053) + w[1] * _CM0390
    y3 = w[5] * _CM0390 + w[1] * (_CM0390 + _C1501)
    s17 = (r1 + r7).astype(np.int32)
    s35 = (r3 + r5).astype(np.int32)
    y4 = s17 * (_C1175 + _CM0899) + s35 * _C1175
    y5 = s17 * _C1175 + s35 * (_C1175 + _CM2562)
    x4, x5, x6, x7 = y0 + y4, y1 + y5, y2 + y5, y3 + y4
    out: list[np.ndarray | None] = [None] * 8
    for low, high, even, odd in ((0, 7, x0, x7), (1, 6, x1, x6), (2, 5, x2, x5), (3, 4, x3, x4)):
        even += bias
        out[low] = _saturate((even + odd) >> shift)
        out[high] = _saturate((even - odd) >> shift)
    return out  # type: ignore[return-value]


def _saturate(values: np.ndarray) -> np.ndarray:
    # _mm_packs_epi32: int32 to int16 with saturation.
    return np.clip(values, -32768, 32767).astype(np.int16)


def _kernel_blocks(blocks: np.ndarray) -> np.ndarray:
    """int16 blocks (n, 8, 8) -> uint8 samples (n, 8, 8) [y, x], by the kernel's own operations."""
    # Columns first: each vector holds one frequency row, across the 8 columns.
    first = _pass([blocks[:, k, :] for k in range(8)], _PASS1_BIAS, 10)
    # Then rows: each vector holds one column of the first pass's output, across y.
    second = _pass([np.stack([first[y][:, k] for y in range(8)], axis=1) for k in range(8)], _PASS2_BIAS, 17)
    # _mm_packus_epi16: int16 to uint8 with saturation; second[x][:, y] is sample (y, x).
    return np.clip(np.stack(second, axis=2), 0, 255).astype(np.uint8)


# The pass as a matrix, read off the kernel itself: impulses in, no bias, no shift.
_MATRIX = np.array(_pass(list(np.eye(8, dtype=np.int16)), 0, 0), dtype=np.float64)  # [out, in]
_PASS1 = _MATRIX / 1024  # the >> 10 as an exact power-of-two scale; floor completes it
_PASS2_T = np.ascontiguousarray((_MATRIX / 131072).T)  # >> 17
# Every output of a pass weighs its input 0 by 4096 (pass 1: 4096 / 1024 = 4 after scaling),
# so a bias b on all outputs is an input-0 bias of b / 4096. Pass 1's 512 goes on every
# column's frequency-0 input; pass 2's bias on its input 0 (pass-1 output column 0) is added
# there through pass 1 as well: an integer added before the floor is added after it.
_INPUT_BIAS = np.full(8, _PASS1_BIAS / 4096)
_INPUT_BIAS[0] += _PASS2_BIAS / 4096 / 4
_FIRST_BIAS = _PASS2_BIAS // 4096  # what pass-1 output column 0 carries beyond the kernel's value


def idct_plane(coefficients: np.ndarray, quantiser: np.ndarray) -> np.ndarray:
    """Quantised int16 blocks (block rows, block columns, 8, 8) and their uint16 quantiser
    (8, 8), both indexed [row frequency, column frequency] -> the component's uint8 samples
    (block rows * 8, block columns * 8), dequantised as stb does ((short)(coefficient *
    quantiser)) and transformed."""
    block_rows, block_columns = coefficients.shape[:2]
    plane = np.empty((block_rows, 8, block_columns, 8), np.uint8)
    # Spelled out across a block row: a broadcast over the inner axes runs several times slower.
    scale = np.repeat(quantiser.astype(np.float64)[:, None, :], block_columns, axis=1)
    bias = np.tile(_INPUT_BIAS, (block_columns, 1))
    band = max(1, _BAND_BLOCKS // block_columns)
    for top in range(0, block_rows, band):
        _idct_band(coefficients[top:top + band], quantiser, scale, bias, plane[top:top + band])
    return plane.reshape(block_rows * 8, block_columns * 8)


def _idct_band(part: np.ndarray, quantiser: np.ndarray, scale: np.ndarray, bias: np.ndarray,
               out: np.ndarray) -> None:
    """part (r, c, 8, 8) int16 -> out (r, 8, c, 8) uint8, in place."""
    rows, columns = part.shape[:2]
    # [r, c, row frequency, x] -> [r, row frequency, c, x]: each run of eight coefficients moves
    # as one 16-byte item (an elementwise transpose with runs of eight is several times slower).
    ordered = np.empty((rows, 8, columns, 8), np.int16)
    np.copyto(ordered.view("V16").reshape(rows, 8, columns),
              part.view("V16").reshape(rows, columns, 8).transpose(0, 2, 1))
    inputs = ordered.astype(np.float64)
    inputs *= scale  # dequantised, not yet truncated to int16
    unsure = inputs.min() < -_EXACT or inputs.max() > _EXACT  # also every product int16 would wrap
    inputs[:, 0] += bias
    # Pass 1 over columns: one product per block row, [r, y, (c, x)] = (sum + 512) / 1024 (+ bias 2).
    first = np.matmul(_PASS1, inputs.reshape(rows, 8, columns * 8))
    np.floor(first, out=first)
    # Column 0 carries _FIRST_BIAS: one range for all columns, within +-_EXACT for both (it sends
    # blocks whose column-0 output lies in 12272..16383 to the kernel needlessly; pixel data stays
    # within about +-4096 there).
    unsure = unsure or first.min() < _FIRST_BIAS - _EXACT or first.max() > _EXACT
    # Pass 2 over rows: the same numbers read as [(r, y, c), x]; the result is the plane's layout.
    second = first.reshape(-1, 8) @ _PASS2_T  # (sum + bias) / 2**17
    # Saturation to int16, then to uint8, is one clip; the cast truncates, i.e. floors, in 0..255.
    np.clip(second, 0, 255, out=second)
    out[...] = second.reshape(out.shape)
    if unsure:
        outside = ((np.abs(inputs[:, 1:]) > _EXACT).any(axis=(1, 3))
                   | (np.abs(inputs[:, 0] - bias) > _EXACT).any(axis=2)
                   | (first.reshape(rows, 8, columns, 8) < _FIRST_BIAS - _EXACT).any(axis=(1, 3))
                   | (first.reshape(rows, 8, columns, 8) > _EXACT).any(axis=(1, 3)))
        if outside.any():
            dequantised = np.multiply(part[outside], quantiser.astype(np.int16), dtype=np.int16)  # wraps as (short)
            block_rows, block_columns = outside.nonzero()
            out[block_rows, :, block_columns, :] = _kernel_blocks(dequantised)
