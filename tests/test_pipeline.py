"""The batched pipeline and tdn classify over many images."""

from __future__ import annotations

import csv
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

import tdn
from tdn.cli import main
from tdn.errors import ImageError
from tdn.image import decode, preprocess_pixels
from tdn.pipeline import InputError, batches, expand_inputs, prepared, read_list
from tests.batch_helpers import write_images, write_small_net


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    cfg, weights = write_small_net(folder)
    images = write_images(folder / "images")
    return {"cfg": cfg, "weights": weights, "root": folder / "images", **images,
            "net": tdn.network.load(cfg, weights, "numpy")}


def one_by_one(net, paths, mode="resize_min"):
    return [net.predict(preprocess_pixels(decode(p), 32, 32, mode)) for p in paths]


def test_directory_expansion_is_recursive_sorted_and_keeps_unreadable_images(small):
    paths = expand_inputs([str(small["root"])])
    assert paths == sorted(str(p) for p in small["good"] + small["bad"])
    assert not any(p.endswith("readme.txt") for p in paths)


def test_patterns_lists_and_missing_paths(small, tmp_path):
    root = small["root"]
    assert expand_inputs([f"{root}/**/*.jpg"]) == sorted(
        str(p) for p in root.rglob("*.jpg"))
    listing = tmp_path / "list.txt"
    listing.write_text(f"{small['good'][0]}\n\n  {small['good'][1]}  \n")
    assert read_list(str(listing)) == [str(small["good"][0]), str(small["good"][1])]
    assert read_list("-", io.StringIO("x.jpg\ny.png\n")) == ["x.jpg", "y.png"]
    # A missing file stays in the list, to be reported when it cannot be read.
    assert expand_inputs(["missing.jpg"]) == ["missing.jpg"]
    with pytest.raises(InputError, match="matches no files"):
        expand_inputs([f"{root}/*.nothing"])


@pytest.mark.parametrize("mode", ["resize_min", "letterbox"])
@pytest.mark.parametrize("batch,workers", [(1, 0), (3, 2), (16, 4)])
def test_batched_results_equal_one_by_one_in_input_order(small, mode, batch, workers):
    good = small["good"]
    expected = one_by_one(small["net"], good, mode)
    got = list(small["net"].predict_batches(good, batch=batch, mode=mode, workers=workers))
    assert [p.source for p in got] == [str(p) for p in good]
    assert [p.index for p in got] == list(range(len(good)))
    for prediction, want in zip(got, expected, strict=True):
        np.testing.assert_allclose(prediction.probabilities, want, rtol=1e-5, atol=1e-7)


def test_resize_min_batches_hold_consecutive_images_of_one_shape(small):
    # e_photo (48x64) and f_same_aspect (96x128) resize to the same 32x42 input: one batch;
    # every other neighbour differs in shape and starts a new batch.
    paths = [small["root"] / "sub" / "e_photo.jpg", small["root"] / "sub" / "f_same_aspect.jpg",
             small["root"] / "a_odd.png", small["root"] / "b_grey.png"]
    groups = list(batches(prepared(paths, 32, 32, "resize_min", workers=2), batch=8))
    assert [[item.index for item in group] for group in groups] == [[0, 1], [2], [3]]
    letterboxed = list(batches(prepared(paths, 32, 32, "letterbox", workers=2), batch=3))
    assert [len(group) for group in letterboxed] == [3, 1]


def test_unreadable_images_are_reported_in_place_or_raise_when_strict(small):
    inputs = [small["good"][0], *small["bad"], small["good"][1]]
    got = list(small["net"].predict_batches(inputs, batch=4, strict=False))
    assert [p.ok for p in got] == [True, False, False, True]
    assert all(str(path) in p.error for path, p in zip(small["bad"], got[1:3], strict=True))
    stream = small["net"].predict_batches(inputs, batch=4)
    assert next(stream).ok
    with pytest.raises(ImageError, match="notes.jpg"):
        next(stream)


def test_in_memory_images_and_shared_samples(small, shared):
    array = np.asarray(Image.open(small["good"][0]).convert("RGB"))
    pil = Image.open(small["good"][1])
    samples = sorted((shared / "images").iterdir())
    got = list(small["net"].predict_batches([array, pil, *samples], batch=2, mode="crop"))
    assert [p.source for p in got[:2]] == ["<image 0>", "<image 1>"]
    expected = one_by_one(small["net"], [small["good"][0], small["good"][1], *samples], "crop")
    for prediction, want in zip(got, expected, strict=True):
        np.testing.assert_allclose(prediction.probabilities, want, rtol=1e-5, atol=1e-7)


def classify(small, capsys, *args):
    code = main(["classify", str(small["cfg"]), str(small["weights"]), "--backend", "numpy", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_jsonl_counts_skips_and_keeps_input_order(small, capsys):
    code, out, err = classify(small, capsys, str(small["root"]), "--batch", "4", "--format", "jsonl")
    assert code == 1  # two unreadable files were skipped: reported, counted, and not hidden by the exit status
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["image"] for r in records] == expand_inputs([str(small["root"])])
    assert sum("error" in r for r in records) == 2
    assert all(len(r["top"]) == 5 for r in records if "error" not in r)
    skipped = [line for line in err.splitlines() if line.startswith("tdn: skipped")]
    assert len(skipped) == 2 and "truncated.jpg" in skipped[1]
    assert "tdn: classified 8 images, skipped 2 unreadable" in err


def test_cli_csv_to_output_file_matches_darknet_format(small, capsys, tmp_path):
    target = tmp_path / "out.csv"
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in small["good"]))
    code, out, _ = classify(small, capsys, "--list", str(listing), "--format", "csv", "--top", "2",
                            "--output", str(target), "--batch", "3")
    assert code == 0 and out == ""
    rows = list(csv.DictReader(target.open()))
    assert len(rows) == 2 * len(small["good"])
    _, darknet, _ = classify(small, capsys, *map(str, small["good"]), "--top", "2")
    lines = [line for line in darknet.splitlines() if "Predicted" not in line]
    assert lines == [f"{r['name']}: {float(r['probability']):f}" for r in rows]
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_cli_strict_stops_at_first_unreadable_and_leaves_no_output(small, capsys, tmp_path):
    target = tmp_path / "out.jsonl"
    code, _, err = classify(small, capsys, str(small["root"]), "--strict", "--format", "jsonl",
                            "--output", str(target))
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("tdn: error: ") and "notes.jpg" in err
    assert os.listdir(tmp_path) == []


def test_cli_reads_list_from_stdin(small, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{small['good'][2]}\n"))
    code, out, err = classify(small, capsys, "--list", "-", "--format", "json")
    assert code == 0 and json.loads(out)["image"] == str(small["good"][2])
    assert "classified 1 image, skipped 0" in err


def test_cli_without_images_is_an_error(small, capsys):
    code, _, err = classify(small, capsys)
    assert code == 1 and "no images given" in err


def test_progress_bar_only_for_several_batches_on_a_terminal(monkeypatch):
    from tdn.cli.classify import progress
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    assert not progress(10, 4).disable and progress(4, 4).disable
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    assert progress(10, 4).disable


def test_pixels_reach_predict_pixels_only_where_preprocessing_changes_nothing(small):
    """With predict_pixels, an image at the network's size goes as its uint8 bytes, others as
    float inputs; the predictions are those of the float path."""
    from tdn.pipeline import predict_batches

    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((32, 32, 3), (32, 32, 3), (40, 48, 3))]
    net = small["net"]
    calls = []

    def spy(pixels):
        calls.append((pixels.dtype, pixels.shape))
        return net.predict_pixels(pixels)

    got = list(predict_batches(net.predict, images, 32, 32, "letterbox", batch=4, workers=0, predict_pixels=spy))
    assert calls == [(np.uint8, (2, 32, 32, 3))]
    expected = list(predict_batches(net.predict, images, 32, 32, "letterbox", batch=4, workers=0))
    for mine, theirs in zip(got, expected, strict=True):
        np.testing.assert_array_equal(mine.probabilities, theirs.probabilities)
