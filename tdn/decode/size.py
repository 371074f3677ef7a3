"""The pixel-count bound that Pillow applies, applied before this package allocates."""

from __future__ import annotations

from PIL import Image


def check_size(width: int, height: int) -> None:
    """Raise Pillow's DecompressionBombError where Pillow itself would refuse the image."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > 2 * limit:
        raise Image.DecompressionBombError(
            f"{width}x{height} = {width * height} pixels, more than twice Image.MAX_IMAGE_PIXELS ({limit})")
