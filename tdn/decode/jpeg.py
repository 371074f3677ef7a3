"""JPEG to RGB pixels exactly as stb_image v2.19 (Darknet's decoder) makes them on x86-64."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tdn.decode.colour import cmyk_to_rgb, ycbcr_to_rgb, ycck_to_rgb
from tdn.decode.idct import idct_plane
from tdn.decode.jpeg_coefficients import quantised_blocks
from tdn.decode.jpeg_header import JpegHeader, NotForStb, parse
from tdn.decode.size import check_size
from tdn.decode.upsample import source_rows, upsample

# Output pixels per band of upsampling and colour conversion: the temporaries stay in cache.
_BAND = 65536


def decode_jpeg(data: bytes) -> np.ndarray:
    """A JPEG file's bytes -> HxWx3 uint8. NotForStb if stb would refuse it or it uses
    sampling ratios this decoder does not reproduce."""
    header = parse(data)
    check_size(header.width, header.height)
    components = _components(header, quantised_blocks(data, header))
    if len(components) == 3 and not header.is_rgb:  # YCbCr: nearly every file, in row bands
        out = np.empty((header.height, header.width, 3), np.uint8)
        step = max(1, _BAND // header.width)
        for top in range(0, header.height, step):
            rows = slice(top, top + step)
            y, cb, cr = (_upsampled(component, header.width, rows) for component in components)
            ycbcr_to_rgb(y, cb, cr, out=out[rows])
        return out
    planes = [_upsampled(component, header.width, slice(None)) for component in components]
    if len(planes) == 1:
        return np.repeat(planes[0][:, :, None], 3, axis=2)
    if len(planes) == 3:
        return np.stack(planes, axis=-1)
    if header.adobe_transform == 0:
        return cmyk_to_rgb(*planes)
    if header.adobe_transform == 2:
        return ycck_to_rgb(*planes)
    return ycbcr_to_rgb(*planes[:3])  # stb ignores a fourth component it cannot name


class _Component(NamedTuple):
    """A component's samples and how stb resamples them: expansion factors, and for each
    output row the component rows it reads as 'near' and 'far'."""
    plane: np.ndarray
    hs: int
    vs: int
    near_rows: np.ndarray
    far_rows: np.ndarray


def _upsampled(component: _Component, width: int, rows: slice) -> np.ndarray:
    return upsample(component.plane, component.hs, component.vs, width, component.near_rows[rows],
                    component.far_rows[rows])


def _planes(header: JpegHeader, blocks: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Each component's samples, upsampled to height x width."""
    return [_upsampled(component, header.width, slice(None)) for component in _components(header, blocks)]


def _components(header: JpegHeader, blocks: list[tuple[np.ndarray, np.ndarray]]) -> list[_Component]:
    """Each component's samples from its blocks, with its resampling."""
    h_max = max(c.h for c in header.components)
    v_max = max(c.v for c in header.components)
    components = []
    for component, (coefficients, quantiser) in zip(header.components, blocks):
        if h_max % component.h or v_max % component.v:
            # stb reads such files past the component's row ends; not reproduced here.
            raise NotForStb(f"sampling factors {component.h}x{component.v} of {h_max}x{v_max} "
                            "are not a whole ratio")
        hs, vs = h_max // component.h, v_max // component.v
        rows = -(-header.height * component.v // v_max)
        columns = -(-header.width // hs)
        block_rows, block_columns = -(-rows // 8), -(-columns // 8)
        if coefficients.shape[0] < block_rows or coefficients.shape[1] < block_columns:
            raise NotForStb(f"libjpeg gives {coefficients.shape[:2]} blocks where "
                            f"{(block_rows, block_columns)} are needed")
        plane = idct_plane(coefficients[:block_rows, :block_columns], quantiser)
        components.append(_Component(plane, hs, vs, *source_rows(header.height, vs, rows)))
    return components
