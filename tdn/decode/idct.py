"""stb_image's integer 8x8 inverse DCT, as its SSE2 kernel (stbi__idct_simd) computes it.

Darknet is built for x86-64, where stb_image always takes the SSE2 path. That kernel is the
scalar fixed-point IDCT (constants scaled by 4096, rounding shifts of 10 and 17) with two
16-bit effects the scalar code lacks: the sums row0+row4, row0-row4, row1+row7 and row3+row5
wrap in int16, and the first pass's outputs saturate to int16. NumPy's int16 and int32
arithmetic wraps the same way, so the same operations in the same widths give the same bits.
"""

from __future__ import annotations

import numpy as np

# Blocks per slice: keeps every temporary in cache; the slices are independent.
_SLICE = 4096


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


def idct_blocks(coefficients: np.ndarray) -> np.ndarray:
    """Dequantised int16 blocks (..., 8, 8) indexed [row frequency, column frequency] ->
    uint8 samples (..., 8, 8) indexed [y, x], as stb_image writes them."""
    shape = coefficients.shape
    blocks = coefficients.reshape(-1, 8, 8)
    samples = np.empty(blocks.shape, np.uint8)
    for start in range(0, len(blocks), _SLICE):
        part = blocks[start:start + _SLICE]
        # Columns first: each vector holds one frequency row, across the 8 columns.
        first = _pass([part[:, k, :] for k in range(8)], _PASS1_BIAS, 10)
        # Then rows: each vector holds one column of the first pass's output, across y.
        second = _pass([np.stack([first[y][:, k] for y in range(8)], axis=1) for k in range(8)],
                       _PASS2_BIAS, 17)
        # _mm_packus_epi16: int16 to uint8 with saturation; second[x][:, y] is sample (y, x).
        samples[start:start + _SLICE] = np.clip(np.stack(second, axis=2), 0, 255)
    return samples.reshape(shape)
