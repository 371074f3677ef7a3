"""Nothing silently wrong: NaN/Inf weights and inputs refused, no NaN in JSON, true cfg line
numbers, absurd cfg values as cfg errors, long or binary lines shortened in messages."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

import tdn
from tdn.cli import main
from tdn.errors import CfgError, WeightsError
from tdn.graph import graph_from_text, load_graph
from tdn.weights import random_params, read_weights, write_weights
from tests.batch_helpers import SMALL_CFG, write_small_net

NET = "[net]\nwidth=32\nheight=24\nchannels=3\n"


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_name_the_file_layer_and_byte(tmp_path, value):
    graph = load_graph("cfg/tiny.cfg")
    params = random_params(graph)
    layer = [node.index for node in graph.nodes if node.kind == "convolutional"][3]
    params[layer]["weights"].reshape(-1)[5] = value
    path = tmp_path / "bad.weights"
    write_weights(path, graph, params)
    before = sum(math.prod(shape) for node in graph.nodes[:layer]
                 for _, shape in node.layer.weight_layout(node.in_shape))
    node = graph.nodes[layer]
    inside = sum(math.prod(shape) for name, shape in node.layer.weight_layout(node.in_shape) if name != "weights")
    byte = 20 + 4 * (before + inside + 5)
    with pytest.raises(WeightsError) as raised:
        read_weights(path, graph)
    assert str(raised.value).startswith(f"{path}: byte {byte}: layer {layer} [convolutional] (cfg/tiny.cfg:")
    assert f"weights holds {np.float32(value)}" in str(raised.value)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_input_to_predict_is_a_value_error(tmp_path, value):
    net = tdn.load(*write_small_net(tmp_path), "numpy")
    x = np.zeros((3, 32, 32), np.float32)
    x[1, 2, 3] = value
    with pytest.raises(ValueError, match="holds NaN or infinite values"):
        net.predict(x)
    with pytest.raises(ValueError, match="holds NaN or infinite values"):
        net.predict(x[None])


def test_an_output_that_overflows_is_skipped_and_json_never_holds_nan(tmp_path, capsys):
    # Finite weights so large that the network's output overflows to inf, then NaN.
    cfg = tmp_path / "small.cfg"
    cfg.write_text(SMALL_CFG)
    graph = graph_from_text(SMALL_CFG, str(cfg))
    params = random_params(graph, seed=3)
    for arrays in params:
        if "weights" in arrays:
            arrays["weights"][...] = 3e38
    write_weights(tmp_path / "huge.weights", graph, params)
    Image.new("RGB", (32, 32), (255, 255, 255)).save(tmp_path / "white.png")
    for fmt in ("json", "jsonl"):
        code = main(["classify", "--backend", "numpy", "--format", fmt, str(cfg), str(tmp_path / "huge.weights"),
                     str(tmp_path / "white.png")])
        out, err = capsys.readouterr()
        assert code == 1
        assert out.count("\n") == (fmt == "jsonl")  # json prints nothing for a skipped image
        for line in out.splitlines():
            json.loads(line, parse_constant=lambda constant: pytest.fail(f"{constant} in JSON output"))
        assert "white.png: the network's output holds NaN or infinite values" in err


@pytest.mark.parametrize("control", ["\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\r"])
def test_control_characters_do_not_start_a_line(control):
    text = NET + f"# a comment {control}[not a header\n[convolutional]\nfilters=x\n"
    with pytest.raises(CfgError, match=r"^x\.cfg:7: \[convolutional\] option 'filters'"):
        graph_from_text(text, "x.cfg")


@pytest.mark.parametrize("lines, message", [
    ("[convolutional]\nsize=" + "9" * 5000, r"x\.cfg:6: .*'size': expected an integer within a C int"),
    ("[convolutional]\nsize=1000000000\n", r"x\.cfg:5: layer 0 .*does not fit"),
    ("[convolutional]\nsize=30001\npad=1\nfilters=65535\n",
     r"x\.cfg:5: layer 0 \[convolutional\]'s weights would hold"),
    ("[convolutional]\nfilters=2147483647\n", r"x\.cfg:5: layer 0 \[convolutional\]'s output would hold"),
    ("[connected]\noutput=2000000000\n", r"x\.cfg:5: layer 0 \[connected\]'s output would hold"),
    ("[upsample]\nstride=100000\n", r"x\.cfg:5: layer 0 \[upsample\]'s output would hold"),
    ("[route]\nlayers=" + "1" * 3000, r"x\.cfg:6: .*'layers': expected an integer within a C int"),
    ("[maxpool]\nsize=1e9\n", r"x\.cfg:6: .*'size': expected an integer, got '1e9'"),
])
def test_absurd_values_are_cfg_errors_with_file_and_line(lines, message):
    with pytest.raises(CfgError, match=message) as raised:
        graph_from_text(NET + lines, "x.cfg")
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 300


def test_an_absurd_input_size_is_a_cfg_error():
    with pytest.raises(CfgError, match=r"^x\.cfg:1: the 100000x100000x3 input would hold 30000000000 values"):
        graph_from_text("[net]\nwidth=100000\nheight=100000\nchannels=3\n[avgpool]\n", "x.cfg")


@pytest.mark.parametrize("line", ["x" * 10000, "\x00\x01\x02\xff" * 500, "[" + "\x07" * 3000 + "]"])
def test_long_or_binary_lines_are_shortened_in_messages(line):
    for text in (NET + line + "\n", NET + "[convolutional]\nsize=" + line + "\n"):
        with pytest.raises(CfgError) as raised:
            graph_from_text(text, "x.cfg")
        message = str(raised.value)
        assert len(message) < 200 and message.isprintable(), message


def test_a_network_of_other_than_three_channels_is_a_cfg_error_for_images(tmp_path, capsys):
    # Found by tests/test_fuzz.py: it was a ValueError traceback from predict.
    cfg = tmp_path / "grey.cfg"
    cfg.write_text("[net]\nwidth=4\nheight=4\nchannels=1\n[avgpool]\n")
    write_weights(tmp_path / "grey.weights", graph_from_text(cfg.read_text()), [{}])
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    assert main(["classify", str(cfg), str(tmp_path / "grey.weights"), str(tmp_path / "a.png")]) == 1
    assert capsys.readouterr().err == (f"tdn: error: {cfg}: the network takes 1-channel input ([net] channels); "
                                       f"tdn reads images as RGB, 3 channels\n")
