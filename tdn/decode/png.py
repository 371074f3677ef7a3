"""PNG as stb_image reads it, asked for three channels.

Pillow's decoding of PNG samples is exact (inflate and filters have one answer); only the
conversion to 8-bit RGB is stb's: 16-bit samples keep their high byte (stbi__convert_16_to_8),
1/2/4-bit grey is scaled by 255/3/15 times, alpha and tRNS transparency are dropped (not
composited), grey is replicated and palettes are expanded.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> HxWx3 uint8."""
    with Image.open(io.BytesIO(data)) as image:
        if image.mode in ("I;16", "I;16B", "I", "I;16L"):
            # 16-bit grey: Pillow keeps every bit; stb keeps the high byte.
            grey = (np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)
            return np.repeat(grey[:, :, None], 3, axis=2)
        if image.mode in ("P", "PA"):
            # Through RGBA: the palette's alpha is dropped, as stb drops it, without a warning.
            return np.ascontiguousarray(np.asarray(image.convert("RGBA"), dtype=np.uint8)[:, :, :3])
        # Pillow already reduces 16-bit colour samples to their high byte, as stb does.
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
