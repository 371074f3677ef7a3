"""tdn export onnx: ONNX Runtime on the export agrees with the NumPy backend (<= 1e-5)."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from tdn.cli import main
from tdn.graph import graph_from_text, load_graph
from tdn.network import Network, load
from tdn.onnx_export import ExportError, to_onnx
from tdn.plugins import registry
from tdn.weights import fold_params, random_params

from .conftest import REPO

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


def _session(model) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_onnx_runtime_agrees_with_numpy_on_odd_shapes_and_batches():
    graph = graph_from_text(CFG)
    raw = random_params(graph, seed=3)
    session = _session(to_onnx(graph, fold_params(graph, raw)))
    network = Network(graph, raw, registry().get("numpy"))
    for batch in (1, 3):  # the batch axis is free
        x = np.random.default_rng(batch).random((batch, 3, 13, 11), np.float32)
        (got,) = session.run(None, {"input": x})
        assert got.shape == (batch, 6, 1, 1)
        np.testing.assert_allclose(got.reshape(batch, -1), network.predict(x), rtol=0, atol=1e-5)


def test_exported_tiny_darknet_agrees_with_numpy(shared, tmp_path):
    out = tmp_path / "tiny.onnx"
    weights = shared / "weights" / "tiny.weights"
    assert main(["export", "onnx", str(REPO / "cfg" / "tiny.cfg"), str(weights), str(out)]) == 0
    x = np.load(shared / "reference" / "tiny_dog_resize_min_input.npy")[None, :, :, :224]
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x})
    want = load(REPO / "cfg" / "tiny.cfg", weights, "numpy").predict(x)
    np.testing.assert_allclose(got.reshape(1, -1), want, rtol=0, atol=1e-5)
    assert int(got.argmax()) == int(want.argmax())


def test_activation_without_onnx_operator_is_an_export_error():
    graph = graph_from_text("[net]\nchannels=1\nheight=4\nwidth=4\n\n[convolutional]\nfilters=2\n"
                            "size=1\nactivation=stair\n", "stair.cfg")
    with pytest.raises(ExportError, match="stair.cfg:6: activation stair has no ONNX export"):
        to_onnx(graph, fold_params(graph, random_params(graph)))


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
