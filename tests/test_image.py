import numpy as np
import pytest
from PIL import Image

import tdn
from tdn.errors import ImageError
from tdn.graph import load_graph
from tdn.image import decode, preprocess_pixels, resize

MODES = ("letterbox", "resize_min", "stretch")


@pytest.mark.parametrize("mode", MODES)
def test_preprocessing_reproduces_darknets_network_input(shared, mode):
    pixels = np.load(shared / "reference" / "tiny_dog_decoded.npy")
    expected = np.load(shared / "reference" / f"tiny_dog_{mode}_input.npy")
    ours = preprocess_pixels(pixels, 224, 224, mode)
    assert ours.shape == expected.shape and ours.dtype == np.float32
    assert np.abs(ours - expected).max() <= 1e-6
    np.testing.assert_array_equal(ours, expected)  # in fact bit for bit


@pytest.mark.parametrize("mode", MODES)
def test_preprocess_api_from_the_stb_png_matches_real_reference(shared, mode):
    expected = np.load(shared / "reference" / "real" / f"real_dog_{mode}_input.npy")
    graph = load_graph("cfg/tiny.cfg")
    for image in (shared / "images" / "dog-stb.png", str(shared / "images" / "dog-stb.png"),
                  Image.open(shared / "images" / "dog-stb.png"),
                  np.load(shared / "reference" / "real" / f"real_dog_{mode}_decoded.npy")):
        x = tdn.preprocess(image, graph, mode=mode)
        assert np.abs(x - expected).max() <= 1e-6


def test_crop_is_the_centre_of_resize_min(shared):
    pixels = np.load(shared / "reference" / "tiny_dog_decoded.npy")
    wide = preprocess_pixels(pixels, 224, 224, "resize_min")
    crop = preprocess_pixels(pixels, 224, 224, "crop")
    assert crop.shape == (3, 224, 224)
    left = (298 - 224) // 2
    np.testing.assert_array_equal(crop, wide[:, :, left:left + 224])


def test_crop_clamps_outside_the_image():
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    crop = preprocess_pixels(pixels, 2, 4, "crop")  # resize_min to width 2 -> 3x2; crop 4 rows
    assert crop.shape == (3, 4, 2)
    np.testing.assert_array_equal(crop[:, 0], crop[:, 1])  # top row repeated (clamped)


def test_resize_to_same_size_is_identity_and_constant_stays_constant():
    image = np.random.default_rng(1).random((3, 5, 7), dtype=np.float32)
    np.testing.assert_array_equal(resize(image, 7, 5), image)
    flat = np.full((3, 6, 9), 0.25, np.float32)
    np.testing.assert_array_equal(resize(flat, 4, 13), np.full((3, 13, 4), 0.25, np.float32))


def test_resize_to_and_from_one_pixel():
    image = np.random.default_rng(2).random((3, 4, 5), dtype=np.float32)
    one = resize(image, 1, 1)
    assert one.shape == (3, 1, 1)
    # Darknet: the last column/row is taken as is; for a 1x1 target that is the last pixel column.
    np.testing.assert_array_equal(one[:, 0, 0], image[:, 0, 4])
    assert resize(one, 3, 2).shape == (3, 2, 3)


@pytest.mark.parametrize("mode, fill", [("L", 128), ("P", 3), ("RGBA", (10, 20, 30, 0)), ("LA", (200, 7))])
def test_grey_palette_and_alpha_become_rgb(tmp_path, mode, fill):
    path = tmp_path / f"image_{mode}.png"
    Image.new(mode, (5, 4), fill).save(path)
    pixels = decode(path)
    assert pixels.shape == (4, 5, 3) and pixels.dtype == np.uint8
    if mode == "RGBA":
        assert tuple(pixels[0, 0]) == (10, 20, 30)  # alpha dropped, not composited
    if mode == "L":
        assert tuple(pixels[0, 0]) == (128, 128, 128)


def test_unreadable_images_are_one_line_errors(tmp_path):
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    with pytest.raises(ImageError, match="text.jpg: not a readable image"):
        decode(text)
    with pytest.raises(ImageError, match="missing.png: cannot read image"):
        decode(tmp_path / "missing.png")
    good = tmp_path / "good.jpg"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(good)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ImageError, match="truncated.jpg: not a readable image"):
        decode(truncated)
    with pytest.raises(ImageError, match=r"expected HxWx3 uint8"):
        decode(np.zeros((4, 4), np.uint8))


def test_unknown_mode():
    with pytest.raises(ImageError, match="unknown preprocessing mode 'zoom'"):
        preprocess_pixels(np.zeros((4, 4, 3), np.uint8), 4, 4, "zoom")


@pytest.mark.parametrize("mode", ["resize_min", "letterbox", "stretch", "crop"])
@pytest.mark.parametrize("w, h", [(32, 32), (32, 48), (48, 32), (31, 32), (40, 40), (64, 32)])
def test_kept_pixels_are_exactly_the_preprocessed_input(mode, w, h):
    """Where keeps_pixels says the decoded bytes stand for the input, preprocess_pixels is to_float
    of them bit for bit; and it says so at the network's own size in every mode."""
    from tdn.image import keeps_pixels, pixels_to_input, to_float

    pixels = np.random.default_rng(w * h).integers(0, 256, (h, w, 3), dtype=np.uint8)
    assert keeps_pixels(32, 32, 32, 32, mode)
    if keeps_pixels(w, h, 32, 32, mode):
        np.testing.assert_array_equal(preprocess_pixels(pixels, 32, 32, mode), to_float(pixels))
        np.testing.assert_array_equal(pixels_to_input(pixels[None])[0], to_float(pixels))
