"""Darknet's classifier augmentation (data.c load_image_augment_paths, image.c), in NumPy.

Per image, in Darknet's order: a random rotated, scaled, aspect-stretched crop of
size x size (random_augment_args + rotate_crop_image: bilinear, zero outside the image) or,
with center=1, the centred square resized; a mirror with probability 1/2 (flip=1); then hue,
saturation and exposure in HSV (random_distort_image). The formulas are Darknet's; the random
numbers come from NumPy, not C's rand(), so the augmented images match Darknet's in
distribution, not value for value.
"""

from __future__ import annotations

import math

import numpy as np
from tdn.image import resize

from tdn_torch.train.options import TrainOptions


def rand_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """utils.c rand_uniform: uniform between the two bounds, in either order."""
    return float(rng.uniform(min(low, high), max(low, high)))


def rand_scale(rng: np.random.Generator, s: float) -> float:
    """utils.c rand_scale: a factor in [1, s] or its inverse, each with probability 1/2."""
    scale = rand_uniform(rng, 1.0, s)
    return scale if rng.integers(2) else 1.0 / scale


def rotate_crop(image: np.ndarray, rad: float, s: float, size: int, dx: float, dy: float,
                aspect: float) -> np.ndarray:
    """image.c rotate_crop_image: each output pixel samples the rotated, scaled source bilinearly."""
    channels, height, width = image.shape
    x = (np.arange(size, dtype=np.float32) - size / 2) / s * aspect + dx / s * aspect
    y = (np.arange(size, dtype=np.float32) - size / 2) / s + dy / s
    cos, sin = np.float32(math.cos(rad)), np.float32(math.sin(rad))
    rx = cos * x[None, :] - sin * y[:, None] + np.float32(width / 2)
    ry = sin * x[None, :] + cos * y[:, None] + np.float32(height / 2)
    ix, iy = np.floor(rx).astype(np.int64), np.floor(ry).astype(np.int64)
    fx, fy = rx - ix, ry - iy
    # get_pixel_extend: pixels outside the image are 0.
    padded = np.zeros((channels, height + 2, width + 2), np.float32)
    padded[:, 1:-1, 1:-1] = image
    px, py = np.clip(ix + 1, 0, width + 1), np.clip(iy + 1, 0, height + 1)
    px1, py1 = np.clip(ix + 2, 0, width + 1), np.clip(iy + 2, 0, height + 1)
    return ((1 - fy) * (1 - fx) * padded[:, py, px] + fy * (1 - fx) * padded[:, py1, px]
            + (1 - fy) * fx * padded[:, py, px1] + fy * fx * padded[:, py1, px1]).astype(np.float32)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """image.c center_crop_image: the centred square, resized to size x size."""
    _, height, width = image.shape
    m = min(width, height)
    top, left = (height - m) // 2, (width - m) // 2
    return resize(np.ascontiguousarray(image[:, top:top + m, left:left + m]), size, size)


def rgb_to_hsv(image: np.ndarray) -> np.ndarray:
    r, g, b = image
    v = image.max(axis=0)
    delta = v - image.min(axis=0)
    safe = np.where(delta > 0, delta, 1)
    s = np.where(v > 0, delta / np.where(v > 0, v, 1), 0)
    h = np.where(r == v, (g - b) / safe, np.where(g == v, 2 + (b - r) / safe, 4 + (r - g) / safe))
    h = np.where(delta > 0, np.where(h < 0, h + 6, h) / 6, 0)
    return np.stack([h, s, v]).astype(np.float32)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[0] * 6, hsv[1], hsv[2]
    index = np.floor(h).astype(np.int64)
    f = h - index
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    # Darknet: sector 0..4 by floor(6h), anything else is sector 5.
    sector = np.where((index >= 0) & (index <= 4), index, 5)
    r = np.choose(sector, [v, q, p, p, t, v])
    g = np.choose(sector, [t, v, v, q, p, p])
    b = np.choose(sector, [p, p, t, v, v, q])
    grey = s == 0
    return np.stack([np.where(grey, v, r), np.where(grey, v, g), np.where(grey, v, b)]).astype(np.float32)


def distort(image: np.ndarray, hue: float, saturation: float, exposure: float) -> np.ndarray:
    """image.c distort_image: shift hue (wrapping), scale saturation and value, clamp to [0, 1]."""
    hsv = rgb_to_hsv(image)
    hsv[1] *= saturation
    hsv[2] *= exposure
    hsv[0] += hue
    hsv[0] = np.where(hsv[0] > 1, hsv[0] - 1, np.where(hsv[0] < 0, hsv[0] + 1, hsv[0]))
    return np.clip(hsv_to_rgb(hsv), 0, 1)


def augment(image: np.ndarray, options: TrainOptions, rng: np.random.Generator) -> np.ndarray:
    """One 3xHxW float image in [0, 1] -> a size x size training input (size = the cfg's width)."""
    size = options.width
    if options.center:
        crop = center_crop(image, size)
    else:
        _, height, width = image.shape
        aspect = rand_scale(rng, options.aspect)
        r = int(rng.integers(min(options.min_size, options.max_size), max(options.min_size, options.max_size) + 1))
        shorter = height if height < width * aspect else width * aspect
        s = r / shorter
        rad = rand_uniform(rng, -options.angle, options.angle) * 2 * math.pi / 360
        dx = rand_uniform(rng, -(width * s / aspect - size) / 2, (width * s / aspect - size) / 2)
        dy = rand_uniform(rng, -(height * s - size) / 2, (height * s - size) / 2)
        crop = rotate_crop(image, rad, s, size, dx, dy, aspect)
    if options.flip and rng.integers(2):
        crop = np.ascontiguousarray(crop[:, :, ::-1])
    # Darknet always distorts; with hue 0 and factors 1 that is the identity up to rounding.
    if options.hue or options.saturation != 1 or options.exposure != 1:
        hue = rand_uniform(rng, -options.hue, options.hue)
        crop = distort(crop, hue, rand_scale(rng, options.saturation), rand_scale(rng, options.exposure))
    return crop
