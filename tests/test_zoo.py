"""The ten Darknet ImageNet classifiers: layer tables, BFLOPs, and dog-stb.png through both
NumPy backends in every preprocessing mode Darknet runs them in.

Weights are random (../shared/darknet/tools/make_weights.py --seed 1, with the residual
scales the reference data uses), written to a temporary folder, one network at a time, and
deleted after its test. numpy and numpy-exact must agree within the fast path's contract
(probabilities within 1e-4 relative, 1e-7 absolute); numpy-exact runs every network in
letterbox mode and the cheaper ones in every mode, to keep this file near a minute and a half.
The dog runs through darknet19 for darknet19_448 too: the same layers at 448x448 (checked here).
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

import tdn
from tdn.cli import main
from tdn.graph import ResizeError, load_graph

CFGS = ("tiny", "darknet", "extraction", "darknet19", "darknet19_448", "darknet53", "resnet18", "resnet50",
        "alexnet", "vgg-16")
RESIDUAL_SCALE = {"darknet53": 0.1, "resnet18": 0.5, "resnet50": 0.3}
MODES = ("letterbox", "resize_min", "stretch")
# Darknet's resize_network exits at a [connected] layer and asserts on a shortcut between
# different widths and heights (the ResNets' downsampling blocks).
NOT_RESIZABLE = {"alexnet", "vgg-16", "resnet18", "resnet50"}
# numpy-exact in every mode only where it takes about a second; in letterbox mode for all.
EXACT_EVERY_MODE = {"tiny", "darknet", "resnet18", "alexnet"}
# darknet19_448 is darknet19's layers at 448x448 (test_darknet19_448_is_darknet19_at_448): checks
# that the cfg's input size does not change run darknet19 for both.
DISTINCT = tuple(name for name in CFGS if name != "darknet19_448")
# A smaller input for each cfg (the layers' kinds and options as in the cfg), for checks where the
# size is irrelevant: cfg text replaced, since Darknet refuses to resize some of them.
SMALL = {"tiny": {"width=224": "width=64", "height=224": "height=64"},
         "darknet": {"width=256": "width=64", "height=256": "height=64"},
         "darknet19": {"width=256": "width=64", "height=256": "height=64"},
         "darknet19_448": {"width=448": "width=64", "height=448": "height=64"},
         "extraction": {"width=224": "width=64", "height=224": "height=64"},
         "darknet53": {"width=256": "width=64", "height=256": "height=64"},
         "resnet18": {"width=256": "width=64", "height=256": "height=64"},
         "resnet50": {"width=256": "width=64", "height=256": "height=64"},
         "alexnet": {"width=227": "width=67", "height=227": "height=67"},
         "vgg-16": {"width=256": "width=64", "height=256": "height=64", "crop_width=224": "crop_width=48",
                    "crop_height=224": "crop_height=48"}}

# Darknet's "Bn ops" for these networks (darknet.c numops: convolutions plus 2*inputs*outputs
# per connected layer), the figures of its ImageNet classifier page.
TOTAL_BFLOPS = {"tiny": 0.983, "darknet": 0.965, "extraction": 8.519, "darknet19": 7.291,
                "darknet19_448": 22.328, "darknet53": 18.570, "resnet18": 4.688, "resnet50": 9.741,
                "alexnet": 2.271, "vgg-16": 30.941}

# Lines of Darknet's layer table for these cfgs, written from its printf formats
# (make_*_layer in parser.c's order); the index column is "%5d ".
TABLE_LINES = {
    "alexnet": [
        "    0 conv     96 11 x11 / 4   227 x 227 x   3   ->    55 x  55 x  96  0.211 BFLOPs",
        "    7 max          3 x 3 / 2    13 x  13 x 256   ->     6 x   6 x 256",
        "    8 connected                            9216  ->  4096",
        "    9 dropout       p = 0.50               4096  ->  4096",
        "   12 connected                            4096  ->  1000",
        "   13 softmax                                        1000",
    ],
    "vgg-16": [
        "    0 Crop Layer: 256 x 256 -> 224 x 224 x 3 image",
        "    1 conv     64  3 x 3 / 1   224 x 224 x   3   ->   224 x 224 x  64  0.173 BFLOPs",
        "   18 max          2 x 2 / 2    14 x  14 x 512   ->     7 x   7 x 512",
        "   19 connected                            25088  ->  4096",
        "   23 connected                            4096  ->  1000",
    ],
    "resnet18": [
        "    4 res    1                  64 x  64 x  64   ->    64 x  64 x  64",
        "   10 res    7                  64 x  64 x  64   ->    32 x  32 x 128",
        "   26 avg                        8 x   8 x 512   ->   512",
        "   27 conv   1000  1 x 1 / 1     1 x   1 x 512   ->     1 x   1 x1000  0.001 BFLOPs",
    ],
    "resnet50": [
        "   17 res   13                  64 x  64 x 256   ->    32 x  32 x 512",
        "   65 res   61                   8 x   8 x2048   ->     8 x   8 x2048",
    ],
    "darknet53": [
        "    1 conv     64  3 x 3 / 2   256 x 256 x  32   ->   128 x 128 x  64  0.604 BFLOPs",
        "    4 res    1                 128 x 128 x  64   ->   128 x 128 x  64",
        "   74 res   71                   8 x   8 x1024   ->     8 x   8 x1024",
    ],
    "darknet19_448": [
        "    0 conv     32  3 x 3 / 1   448 x 448 x   3   ->   448 x 448 x  32  0.347 BFLOPs",
    ],
}

# Every line Darknet prints for these kinds, as patterns of its printf formats (%4d: D).
D = r"[ \d]{3}\d"
SHAPE = rf"{D} x{D} x{D}"
LINE_FORMATS = [rf"[ \d]{{4}}\d {pattern}" for pattern in (
    rf"conv  [ \d]{{4}}\d [ \d]\d x[ \d]\d /[ \d]\d  {SHAPE}   ->  {SHAPE}  [ \d]*\d\.\d{{3}} BFLOPs",
    rf"max          \d x \d / \d  {SHAPE}   ->  {SHAPE}",
    rf"avg                     {SHAPE}   ->  {D}",
    rf"res  [ \d]{{2}}\d                {SHAPE}   ->  {SHAPE}",
    rf"connected                            {D}\d*  ->  {D}",
    rf"dropout       p = \d\.\d\d               {D}  ->  {D}",
    rf"softmax                                        {D}",
    r"Crop Layer: \d+ x \d+ -> \d+ x \d+ x \d+ image",
)]


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("zoo-weights")


def small_cfg_text(shared, name: str) -> str:
    """The cfg's text at its SMALL input."""
    text = (shared / "cfg" / f"{name}.cfg").read_text()
    for old, new in SMALL[name].items():
        assert old in text, f"{name}.cfg has no {old}"
        text = text.replace(old, new)
    return text


def make_weights(shared, folder, name, cfg=None):
    """make_weights.py's weights for the zoo cfg `name`, or for the cfg file `cfg` standing for it."""
    path = folder / f"{name}.weights"
    cfg = cfg or shared / "cfg" / f"{name}.cfg"
    command = [sys.executable, str(shared / "tools" / "make_weights.py"), str(cfg), str(path), "--seed", "1"]
    if name in RESIDUAL_SCALE:
        command += ["--residual-scale", str(RESIDUAL_SCALE[name])]
    subprocess.run(command, check=True, capture_output=True)
    return path


@pytest.mark.parametrize("name", CFGS)
def test_summary_is_darknets_layer_table(shared, name):
    graph = load_graph(shared / "cfg" / f"{name}.cfg")
    lines = graph.summary().splitlines()
    assert lines[0] == "layer     filters    size              input                output"
    assert len(lines) == len(graph.nodes) + 2
    for index, line in enumerate(lines[1:-1]):
        assert line.startswith(f"{index:5d} ")
        assert any(re.fullmatch(pattern, line) for pattern in LINE_FORMATS), line
    for line in TABLE_LINES.get(name, []):
        assert line in lines
    assert lines[-1] == f"Total BFLOPs {TOTAL_BFLOPS[name]:.3f}"


def test_darknet19_448_is_darknet19_at_448(shared):
    big, darknet19 = (load_graph(shared / "cfg" / f"{name}.cfg") for name in ("darknet19_448", "darknet19"))
    assert [node.layer for node in big.nodes] == [node.layer for node in darknet19.nodes]
    assert (big.input_shape, darknet19.input_shape) == ((3, 448, 448), (3, 256, 256))


@pytest.mark.parametrize("name", DISTINCT)
def test_dog_through_both_numpy_backends(shared, weights_dir, name):
    weights = make_weights(shared, weights_dir, name)
    try:
        cfg, image = shared / "cfg" / f"{name}.cfg", shared / "images" / "dog-stb.png"
        fast, exact = (tdn.load(cfg, weights, backend) for backend in ("numpy", "numpy-exact"))
        for mode in MODES:
            if mode == "resize_min" and name in NOT_RESIZABLE:
                for net in (fast, exact):
                    with pytest.raises(ResizeError, match="runs only at its cfg's input size"):
                        net.predict_batches([image], mode=mode)
                continue
            [prediction] = fast.predict_batches([image], mode=mode, workers=0)
            p = prediction.probabilities
            assert p.shape == (1000,) and p.dtype == np.float32
            assert p.min() >= 0 and abs(float(p.sum(dtype=np.float64)) - 1) < 1e-5, f"{name} {mode}"
            # Random weights scaled as make_weights.py does keep the softmax unsaturated.
            assert 0.005 < p.max() < 0.95, f"{name} {mode}: top probability {p.max()}"
            if mode == "letterbox" or name in EXACT_EVERY_MODE:
                [reference] = exact.predict_batches([image], mode=mode, workers=0)
                q = reference.probabilities
                np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-7, err_msg=f"{name} {mode}")
                assert np.argmax(p) == np.argmax(q)
    finally:
        weights.unlink()


@pytest.mark.parametrize("name", ["alexnet", "resnet18"])
def test_classify_resize_min_refuses_on_one_line(shared, tmp_path, capsys, name):
    # Only the shapes matter here: a file of zeros of the right size stands for the weights.
    graph = load_graph(shared / "cfg" / f"{name}.cfg")
    weights = tmp_path / "zeros.weights"
    tdn.weights.write_weights(weights, graph, [
        {key: np.zeros(shape, np.float32) for key, shape in node.layer.weight_layout(node.in_shape)}
        for node in graph.nodes])
    image = str(shared / "images" / "dog-stb.png")
    cfg = str(shared / "cfg" / f"{name}.cfg")
    assert main(["classify", cfg, str(weights), image]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(f"tdn: error: {cfg}:") and "runs only at its cfg's input size" in line
    assert main(["classify", "--resize", "letterbox", cfg, str(weights), image]) == 0
    assert main(["summary", "--size", "300x200", cfg]) == 1
