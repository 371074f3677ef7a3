"""tdn export onnx: ONNX Runtime on the export agrees with the NumPy backend (<= 1e-5), for every
layer kind, at the cfg's size and, where Darknet can resize the network, at others."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from tdn.cli import main
from tdn.graph import graph_from_text, load_graph
from tdn.network import Network, load
from tdn.onnx_export import EXPORTABLE_KINDS, ExportError, to_onnx
from tdn.plugins import registry
from tdn.weights import Header, fold_params, random_params, write_weights

from .conftest import REPO
from .test_zoo import DISTINCT, NOT_RESIZABLE, make_weights, small_cfg_text

CFG = """
[net]
channels=3
height=13
width=11

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=3
stride=2

[convolutional]
filters=12
size=3
stride=2
pad=1
groups=4
activation=relu

[maxpool]
size=2
stride=1

[convolutional]
filters=6
size=1
stride=1
activation=linear

[avgpool]

[softmax]
groups=2
temperature=0.5
"""

# Resizable (Darknet's resize stops at the avgpool; batchnorm and connected come after it). The
# crop's window at the cfg's 26x22 is the cfg's 15x13, where resize_scale * size would give 15x12.
RESIZABLE_CFG = """
[net]
channels=3
height=22
width=26

[crop]
crop_height=13
crop_width=15

[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
activation=leaky

[upsample]
stride=2
scale=0.5

[convolutional]
filters=6
size=3
stride=2
pad=1
activation=relu

# 8 channels added to 6: the first 6 of them
[shortcut]
from=-3
alpha=0.5
beta=2
activation=leaky

[route]
layers=-1,1
groups=2
group_id=1

[convolutional]
filters=4
size=1
activation=linear

[convolutional]
filters=10
size=1
activation=linear

# 4 channels added to 10: the other 6 pass through
[shortcut]
from=-2
activation=logistic

[maxpool]
size=3
stride=2

[maxpool]
size=2
stride=1
padding=2

[avgpool]

[batchnorm]

[connected]
output=5
batch_normalize=1
activation=tanh

[dropout]
probability=0.3

[softmax]
"""

# Not resizable (a batchnorm before the avgpool, shortcuts between maps of different sizes); the
# connected layer reads the maps flattened in CHW order.
FIXED_SIZE_CFG = """
[net]
channels=3
height=14
width=14

[crop]
crop_height=12
crop_width=12

[convolutional]
filters=4
size=3
pad=1
activation=leaky

[batchnorm]

[convolutional]
filters=6
size=3
stride=2
pad=1
activation=linear

# a 12x12 map added to a 6x6 one: every other cell of it
[shortcut]
from=1

[upsample]
stride=2

# a 6x6 map added to a 12x12 one: on every other cell
[shortcut]
from=-2
alpha=0.7
beta=-1.5
activation=relu

[maxpool]
size=2
stride=2

[convolutional]
filters=3
size=3
activation=linear

[route]
layers=-2

# a 4x4 map added to the 6x6 one's corner, 3 of its 6 channels
[shortcut]
from=-2
beta=0.5

[connected]
output=10
batch_normalize=1
activation=leaky

[dropout]

[connected]
output=7
activation=linear

[softmax]
"""


def _session(model) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _input_dims(model) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]


def _agrees(text: str, sizes: list[tuple[int, int]], batch: int = 2, seed: int = 3):
    """The export of cfg `text` under ONNX Runtime against the numpy backend at each (height, width)."""
    graph = graph_from_text(text)
    raw = random_params(graph, seed=seed)
    model = to_onnx(graph, fold_params(graph, raw))
    session = _session(model)
    network = Network(graph, raw, registry().get("numpy"))
    for height, width in sizes:
        x = np.random.default_rng(height * width).random((batch, graph.net.channels, height, width), np.float32)
        (got,) = session.run(None, {"input": x})
        want = network.predict(x)
        assert np.isfinite(want).all()
        assert got.shape == want.shape == (batch, network.graph.resized(height, width).classes)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=f"{height}x{width}")
    return model


def test_onnx_runtime_agrees_with_numpy_on_odd_shapes_and_batches():
    graph = graph_from_text(CFG)
    raw = random_params(graph, seed=3)
    session = _session(to_onnx(graph, fold_params(graph, raw)))
    network = Network(graph, raw, registry().get("numpy"))
    for batch in (1, 3):  # the batch axis is free
        x = np.random.default_rng(batch).random((batch, 3, 13, 11), np.float32)
        (got,) = session.run(None, {"input": x})
        assert got.shape == (batch, 6)
        np.testing.assert_allclose(got, network.predict(x), rtol=0, atol=1e-5)


def test_every_kind_at_free_sizes():
    model = _agrees(RESIZABLE_CFG, [(22, 26), (31, 17), (40, 44)])
    assert _input_dims(model) == ["batch", 3, "height", "width"]
    ops = {node.op_type for node in model.graph.node}
    assert {"ScatterND", "Resize", "Concat", "Gemm", "Where"} - ops == {"ScatterND"}


def test_every_kind_at_the_cfg_size_only():
    model = _agrees(FIXED_SIZE_CFG, [(14, 14)], batch=3)
    assert _input_dims(model) == ["batch", 3, 14, 14]
    assert "ScatterND" in {node.op_type for node in model.graph.node}


def test_output_of_a_network_ending_on_its_maps_has_free_classes():
    model = _agrees("[net]\nchannels=2\nheight=5\nwidth=6\n\n[convolutional]\nfilters=3\nsize=1\n"
                    "activation=linear\n", [(5, 6), (7, 3)])
    output = model.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in output] == ["batch", "classes"]


@pytest.mark.parametrize("size,stride,padding", [(2, 2, 0), (3, 2, 2), (3, 1, 1), (2, 1, 3), (5, 3, 4),
                                                 (1, 2, 0), (4, 3, 7)])
def test_maxpool_windows(size, stride, padding):
    _agrees(f"[net]\nchannels=2\nheight=9\nwidth=8\n\n[maxpool]\nsize={size}\nstride={stride}\n"
            f"padding={padding}\n", [(9, 8), (7, 10)])


def test_activations():
    exportable = ("leaky", "relie", "relu", "logistic", "tanh", "elu", "selu", "hardtan", "loggy", "ramp")
    text = "[net]\nchannels=3\nheight=4\nwidth=5\n" + "".join(
        f"\n[convolutional]\nfilters=3\nsize=1\nactivation={name}\n" for name in exportable)
    _agrees(text, [(4, 5)])


def test_activation_without_onnx_operator_is_an_export_error():
    graph = graph_from_text("[net]\nchannels=1\nheight=4\nwidth=4\n\n[convolutional]\nfilters=2\n"
                            "size=1\nactivation=stair\n", "stair.cfg")
    with pytest.raises(ExportError, match="stair.cfg:6: activation stair has no ONNX export"):
        to_onnx(graph, fold_params(graph, random_params(graph)))


def test_exported_tiny_darknet_agrees_with_numpy(shared, tmp_path):
    out = tmp_path / "tiny.onnx"
    weights = shared / "weights" / "tiny.weights"
    assert main(["export", "onnx", str(REPO / "cfg" / "tiny.cfg"), str(weights), str(out)]) == 0
    x = np.load(shared / "reference" / "tiny_dog_resize_min_input.npy")[None, :, :, :224]
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x})
    want = load(REPO / "cfg" / "tiny.cfg", weights, "numpy").predict(x)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert int(got.argmax()) == int(want.argmax())


def test_export_reads_transposed_connected_weights(tmp_path):
    cfg, weights, out = tmp_path / "fixed.cfg", tmp_path / "transposed.weights", tmp_path / "fixed.onnx"
    cfg.write_text(FIXED_SIZE_CFG)
    graph = load_graph(cfg)
    write_weights(weights, graph, random_params(graph, seed=5), Header(major=1001))
    assert main(["export", "onnx", str(cfg), str(weights), str(out)]) == 0
    x = np.random.default_rng(0).random((2, 3, 14, 14), np.float32)
    (got,) = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    np.testing.assert_allclose(got, load(cfg, weights, "numpy").predict(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", DISTINCT)
def test_zoo_network_agrees_with_numpy(shared, tmp_path, name):
    """Each zoo cfg with make_weights.py's random weights, batch 2; the networks Darknet can resize
    at a small input of another shape (their height and width are free in the export). AlexNet and
    VGG-16, fixed at their cfg's size by connected layers that hold most of their weights, at
    test_zoo.SMALL's input (VGG-16's first connected layer still reads maps of 2x2); darknet19_448
    as darknet19, the same layers."""
    cfg = shared / "cfg" / f"{name}.cfg"
    if name in ("alexnet", "vgg-16"):
        cfg = tmp_path / f"{name}.cfg"
        cfg.write_text(small_cfg_text(shared, name))
    graph = load_graph(cfg)
    assert {node.kind for node in graph.nodes} <= EXPORTABLE_KINDS
    weights = make_weights(shared, tmp_path, name, cfg)
    network = load(cfg, weights, "numpy")
    model = to_onnx(graph, network.params)
    resizable = name not in NOT_RESIZABLE
    c, h, w = graph.input_shape
    assert _input_dims(model) == (["batch", c, "height", "width"] if resizable else ["batch", c, h, w])
    height, width = (96, 64) if resizable else (h, w)
    x = np.random.default_rng(1).random((2, c, height, width), np.float32)
    (got,) = _session(model).run(None, {"input": x})
    want = network.predict(x)
    assert np.isfinite(want).all() and got.shape == want.shape == (2, 1000)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert (got.argmax(axis=1) == want.argmax(axis=1)).all()


def test_export_of_bad_weights_fails_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.weights"
    bad.write_bytes(b"\0" * 40)
    code = main(["export", "onnx", str(REPO / "cfg" / "tiny.cfg"), str(bad), str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("tdn: error: ") and err.count("\n") == 1
    assert not (tmp_path / "x.onnx").exists()


def test_tiny_graph_exports_every_layer():
    graph = load_graph(REPO / "cfg" / "tiny.cfg")
    model = to_onnx(graph, fold_params(graph, random_params(graph)))
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("Conv") == sum(node.kind == "convolutional" for node in graph.nodes)
    assert ops.count("MaxPool") == sum(node.kind == "maxpool" for node in graph.nodes)
