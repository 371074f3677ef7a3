"""The default bound on image sizes: its own module, so that `import tdn` reads it without
importing NumPy or Pillow."""

DEFAULT_MAX_PIXELS = 50_000_000
"""The largest image (width x height) decoded, and the largest array preprocessing makes, by
default: a 48-megapixel photo fits; decoding and preprocessing peak at about 18 bytes a
pixel (measured: Pillow's image, its RGB copy, the float32 image), 0.9 GB at the default.
Pillow's own limit (Image.MAX_IMAGE_PIXELS) applies too when lower."""
