"""stb_image's chroma upsampling: from a component's samples to one per output pixel.

stb picks one resampler per component from its expansion factors hs = Hmax // H and
vs = Vmax // V: none (1x1), vertical 1x2, horizontal 2x1 and the 2x2 "fancy" triangle
filter, nearest neighbour for anything else. Rows come from a small state machine
(stbi__resample's ystep/line0/line1) that stops advancing at the component's last row.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


# A loop in Python (0.4 ms for a 640x480 image's three components): kept for the sizes seen
# last, since a folder of images tends to repeat them. The arrays are read-only, being shared.
@lru_cache(maxsize=32)
def source_rows(height: int, vs: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """For each output row, the component rows stb reads as 'near' and 'far'."""
    near = np.empty(height, np.intp)
    far = np.empty(height, np.intp)
    ystep, ypos, line0, line1 = vs >> 1, 0, 0, 0
    for j in range(height):
        if ystep >= vs >> 1:
            near[j], far[j] = line1, line0
        else:
            near[j], far[j] = line0, line1
        ystep += 1
        if ystep >= vs:
            ystep, line0 = 0, line1
            ypos += 1
            if ypos < rows:
                line1 += 1
    near.flags.writeable = False
    far.flags.writeable = False
    return near, far


def upsample(plane: np.ndarray, hs: int, vs: int, width: int, near_rows: np.ndarray,
             far_rows: np.ndarray) -> np.ndarray:
    """A component's uint8 samples -> the output rows whose 'near' and 'far' component rows
    (source_rows) are given, len(near_rows) x width uint8."""
    lores = -(-width // hs)  # stb's w_lores
    near = plane[near_rows, :lores]
    if hs == 1 and vs == 1:
        return near
    if hs == 1 and vs == 2:
        mixed = 3 * near.astype(np.uint16) + plane[far_rows, :lores] + 2
        return (mixed >> 2).astype(np.uint8)
    if hs == 2 and vs == 1:
        return _horizontal_2(near.astype(np.uint16), width)
    if hs == 2 and vs == 2:
        return _both_2(3 * near.astype(np.uint16) + plane[far_rows, :lores], width)
    return np.repeat(near, hs, axis=1)[:, :width]


def _interleave(even: np.ndarray, odd: np.ndarray, width: int) -> np.ndarray:
    out = np.empty((even.shape[0], 2 * even.shape[1]), np.uint8)
    out[:, 0::2] = even
    out[:, 1::2] = odd
    return out[:, :width]


def _horizontal_2(row: np.ndarray, width: int) -> np.ndarray:
    """stbi__resample_row_h_2 on uint16 rows of w samples."""
    w = row.shape[1]
    if w == 1:
        return _interleave(row, row, width)
    three = 3 * row + 2
    even = np.empty_like(row)
    odd = np.empty_like(row)
    even[:, 0] = row[:, 0]
    even[:, 1:] = (three[:, 1:] + row[:, :-1]) >> 2
    # stb's quirk: the last even output weights the second-to-last sample, not the last.
    even[:, w - 1] = (three[:, w - 2] + row[:, w - 1]) >> 2
    odd[:, :-1] = (three[:, :-1] + row[:, 1:]) >> 2
    odd[:, w - 1] = row[:, w - 1]
    return _interleave(even, odd, width)


def _both_2(column_mix: np.ndarray, width: int) -> np.ndarray:
    """stbi__resample_row_hv_2 given t = 3*near + far per sample (uint16)."""
    w = column_mix.shape[1]
    if w == 1:
        edge = (column_mix + 2) >> 2
        return _interleave(edge, edge, width)
    three = 3 * column_mix + 8
    even = np.empty_like(column_mix)
    odd = np.empty_like(column_mix)
    even[:, 0] = (column_mix[:, 0] + 2) >> 2
    even[:, 1:] = (three[:, 1:] + column_mix[:, :-1]) >> 4
    odd[:, :-1] = (three[:, :-1] + column_mix[:, 1:]) >> 4
    odd[:, w - 1] = (column_mix[:, w - 1] + 2) >> 2
    return _interleave(even, odd, width)
