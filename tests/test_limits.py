"""Memory bounded by the network, not by the file: images refused before the allocation."""

from __future__ import annotations

import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

import tdn
from tdn.cli import main
from tdn.image import (
    DEFAULT_MAX_PIXELS,
    ImageTooLargeError,
    check_preprocessing,
    decode,
    preprocess_pixels,
    to_float,
)
from tests.batch_helpers import write_small_net

MODES = ("resize_min", "letterbox", "stretch", "crop")


def png_header_only(path, width: int, height: int) -> None:
    """A valid PNG signature and header for width x height and no pixel data: a few dozen
    bytes that Pillow opens (it reads the header) and would decode to a huge image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def peak_bytes(function, *args, **kwargs):
    tracemalloc.start()
    try:
        try:
            function(*args, **kwargs)
        except ImageTooLargeError as error:
            raised = error
        else:
            raised = None
        return tracemalloc.get_traced_memory()[1], raised
    finally:
        tracemalloc.stop()


def test_a_small_file_that_would_decode_huge_is_refused_from_its_header(tmp_path):
    path = tmp_path / "bomb.png"
    png_header_only(path, 8000, 8000)  # 64 megapixels: over the default bound, under Pillow's
    assert path.stat().st_size < 100
    peak, raised = peak_bytes(decode, path)
    assert raised is not None and str(raised) == (f"{path}: 8000x8000 pixels is more than the {DEFAULT_MAX_PIXELS} "
                                                  f"allowed (max_pixels, --max-pixels)")
    assert peak < 1_000_000  # refused before any pixel buffer
    # Beyond twice Pillow's limit Pillow refuses at open; the same error class, naming the file.
    png_header_only(path, 100_000, 100_000)
    peak, raised = peak_bytes(decode, path)
    assert raised is not None and str(raised).startswith(f"{path}: Image size (10000000000 pixels) exceeds limit")
    assert peak < 1_000_000


def test_pillows_own_lower_limit_is_respected(tmp_path, monkeypatch):
    path = tmp_path / "medium.png"
    Image.new("RGB", (100, 100)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)
    with (pytest.warns(Image.DecompressionBombWarning),
          pytest.raises(ImageTooLargeError, match=r"100x100 pixels is more than the 5000 allowed")):
        decode(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert decode(path, max_pixels=None).shape == (100, 100, 3)


@pytest.mark.parametrize("mode", MODES)
def test_extreme_aspect_ratios_are_refused_in_every_mode_before_allocating(mode):
    # 2 x 300000 pixels: 1.8 MB decoded; resized naively it would be gigabytes (resize_min: a
    # 224 x 33.6M network input; stretch: a 67M-pixel first pass; letterbox: 0 pixels wide).
    pixels = np.zeros((300_000, 2, 3), np.uint8)
    peak, raised = peak_bytes(preprocess_pixels, pixels, 224, 224, mode, source="tall.png")
    assert raised is not None and str(raised).startswith("tall.png: 2x300000 pixels")
    assert peak < 1_000_000
    # and the same image is fine where the bound allows its arrays
    for w, h in ((300_000, 2), (2, 300_000)):
        check_preprocessing("x", w, h, 4, 4, "stretch", max_pixels=10**7)


def test_resize_min_keeps_the_network_input_within_a_factor_of_the_cfgs():
    check_preprocessing("x", 224 * 16, 224, 224, 224, "resize_min")  # 16:1 panorama
    with pytest.raises(ImageTooLargeError, match=r"resize_min would run the network at 3808x224, more than 16 times"):
        check_preprocessing("x", 224 * 17, 224, 224, 224, "resize_min")
    check_preprocessing("x", 224 * 17, 224, 224, 224, "letterbox")


def test_the_bound_is_every_array_of_preprocessing():
    with pytest.raises(ImageTooLargeError, match=r"stretch mode the horizontal resize pass would be 224x1000"):
        check_preprocessing("x", 100, 1000, 224, 224, "stretch", max_pixels=200_000)
    check_preprocessing("x", 100, 1000, 224, 224, "stretch", max_pixels=224_000)
    assert DEFAULT_MAX_PIXELS >= 48_000_000  # a 48-megapixel phone photo is not refused


def test_to_float_makes_no_float64_copy_and_keeps_darknets_values():
    pixels = np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), np.uint8)
    tracemalloc.start()
    image = to_float(pixels)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # the float32 result (12 MB) and blocks of a million pixels; a float64 copy alone is 24 MB
    assert peak < 12e6 + 30e6 and peak < 12e6 + 24e6 + 12e6
    np.testing.assert_array_equal(image, (pixels.transpose(2, 0, 1) / 255.0).astype(np.float32))


def test_sixteen_bit_grey_decodes_to_its_high_bytes(tmp_path):
    values = np.arange(0, 65536, 97, dtype=np.uint16)[:600].reshape(20, 30)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    decoded = decode(path)
    assert decoded.dtype == np.uint8 and decoded.shape == (20, 30, 3)
    assert np.abs(decoded[:, :, 0].astype(int) - (values >> 8)).max() <= 1


def test_a_directory_run_skips_and_counts_a_huge_image(tmp_path, capsys):
    cfg, weights = write_small_net(tmp_path)
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(folder / "a_good.png")
    png_header_only(folder / "b_bomb.png", 8000, 8000)
    Image.new("RGB", (30, 40), (10, 10, 200)).save(folder / "c_good.png")
    code = main(["classify", "--backend", "numpy", "--format", "jsonl", str(cfg), str(weights), str(folder)])
    out, err = capsys.readouterr()
    assert code == 1  # an image was skipped
    assert [line.count('"top"') for line in out.splitlines()] == [1, 0, 1]
    assert f"tdn: skipped {folder / 'b_bomb.png'}: 8000x8000 pixels is more than the" in err
    assert "classified 2 images, skipped 1" in err
    assert main(["classify", "--backend", "numpy", "--max-pixels", "1000", str(cfg), str(weights),
                 str(folder / "a_good.png")]) == 1
    assert "40x30 pixels is more than the 1000 allowed" in capsys.readouterr().err


def test_the_api_takes_max_pixels(tmp_path):
    cfg, weights = write_small_net(tmp_path)
    net = tdn.load(cfg, weights, "numpy")
    Image.new("RGB", (40, 30)).save(tmp_path / "a.png")
    assert tdn.preprocess(tmp_path / "a.png", net).shape == (3, 32, 42)
    with pytest.raises(ImageTooLargeError):
        tdn.preprocess(tmp_path / "a.png", net, max_pixels=1000)
    results = list(net.predict_batches([tmp_path / "a.png"], strict=False, max_pixels=1000))
    assert results[0].probabilities is None and "1000 allowed" in results[0].error
