"""The float64 reference backend against Darknet's own buffers and against hand-worked cases."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from tdn.graph import graph_from_text, load_graph
from tdn.layers import LAYER_KINDS
from tdn.network import Network
from tdn.testing import reference
from tdn.testing.reference import LAYERS, ReferenceBackend, ReferenceProgram
from tdn.testing.reference.activations import ACTIVATIONS, activate
from tdn.testing.reference.maxpool import FLT_MAX
from tdn.weights import read_weights

from .conftest import hermetic_backends

MODES = ("letterbox", "resize_min", "stretch")


def net(body: str, channels: int, height: int, width: int) -> str:
    return f"[net]\nchannels={channels}\nheight={height}\nwidth={width}\n\n{body}"


def run(cfg: str, x: np.ndarray, params=None) -> list[np.ndarray]:
    graph = graph_from_text(cfg)
    return ReferenceProgram(graph, params or [{} for _ in graph.nodes]).run_layers_float64(x)


def test_every_layer_kind_has_a_reference_file():
    assert set(LAYERS) == set(LAYER_KINDS)
    assert ReferenceBackend.layer_kinds == frozenset(LAYER_KINDS)


@pytest.mark.parametrize("mode", MODES)
def test_every_layer_agrees_with_darknet_from_its_given_input(shared, mode):
    # Darknet computes in float32; the reference in float64: they differ by Darknet's rounding,
    # measured at 1.4e-6 of a layer's largest value.
    x = np.load(shared / "reference" / f"tiny_dog_{mode}_input.npy")
    graph = load_graph("cfg/tiny.cfg").resized(*x.shape[1:])
    _, raw = read_weights(shared / "weights" / "tiny-random.weights", graph)
    program = ReferenceProgram(graph, raw)
    files = sorted((shared / "reference").glob(f"tiny_dog_{mode}_layer*_*.npy"))
    assert len(files) == len(graph.nodes) == 22
    previous = x[None].astype(np.float64)
    for node, params, path in zip(graph.nodes, program.params, files):
        expected = np.load(path).reshape((1,) + node.out_shape)
        ours = LAYERS[node.kind](node, params, previous, ())
        assert ours.dtype == np.float64 and ours.shape == expected.shape
        error = float(np.abs(ours - expected).max()) / float(np.abs(expected).max())
        assert error <= 1e-5, f"layer {node.index} ({path.name}): relative error {error:.3g}"
        previous = expected.astype(np.float64)
    final = program.run_layers_float64(x[None])[-1].reshape(-1)
    np.testing.assert_allclose(final, np.load(shared / "reference" / f"tiny_dog_{mode}_output.npy"), rtol=1e-4)


def test_trained_weights_agree_with_darknet(shared):
    real = shared / "reference" / "real"
    graph = load_graph("cfg/tiny.cfg")
    _, raw = read_weights(shared / "weights" / "tiny.weights", graph)
    network = Network(graph, raw, ReferenceBackend(), "fp64")
    for mode in MODES:
        probabilities = network.predict(np.load(real / f"real_dog_{mode}_input.npy"))
        expected = np.load(real / f"real_dog_{mode}_output.npy")
        np.testing.assert_allclose(probabilities, expected, rtol=1e-4, atol=1e-7)
        assert probabilities.argmax() == expected.argmax()


def test_convolution_sums_each_window_of_the_zero_padded_input():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    ones = {"weights": np.ones((1, 1, 3, 3)), "biases": np.array([0.5])}
    same = run(net("[convolutional]\nsize=3\npad=1\nactivation=linear\n", 1, 3, 3), x, [ones])[0]
    # Each output is the sum of its 3x3 neighbourhood (cells outside are 0) plus the bias.
    assert same[0, 0].tolist() == [[12.5, 21.5, 16.5], [27.5, 45.5, 33.5], [24.5, 39.5, 28.5]]
    strided = run(net("[convolutional]\nsize=3\nstride=2\npadding=1\nactivation=linear\n", 1, 3, 3), x, [ones])[0]
    assert strided[0, 0].tolist() == [[12.5, 16.5], [24.5, 28.5]]


def test_groups_see_only_their_own_channels():
    x = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 10.0)])[None]
    params = {"weights": np.ones((4, 1, 1, 1)), "biases": np.zeros(4)}
    out = run(net("[convolutional]\nfilters=4\ngroups=2\nactivation=linear\n", 2, 2, 2), x, [params])[0]
    assert out[0, :, 0, 0].tolist() == [1.0, 1.0, 10.0, 10.0]


def test_batch_norm_as_darknet_computes_it():
    x = np.full((1, 1, 1, 1), 3.0)
    params = {"weights": np.full((1, 1, 1, 1), 2.0), "biases": np.array([0.25]), "scales": np.array([1.5]),
              "rolling_mean": np.array([1.0]), "rolling_variance": np.array([4.0])}
    out = run(net("[convolutional]\nbatch_normalize=1\nactivation=linear\n", 1, 1, 1), x, [params])[0]
    # (6 - 1) / (sqrt(4) + 1e-6) * 1.5 + 0.25, the epsilon after the root (normalize_cpu).
    assert out.item() == pytest.approx(5 / (2 + 1e-6) * 1.5 + 0.25, rel=1e-12)


def test_the_default_activation_of_a_convolution_is_logistic():
    out = run(net("[convolutional]\n", 1, 1, 1), np.zeros((1, 1, 1, 1)),
              [{"weights": np.ones((1, 1, 1, 1)), "biases": np.zeros(1)}])[0]
    assert out.item() == 0.5


def test_maxpool_windows_start_half_the_padding_before_the_input():
    x = np.array([[1.0, 5.0, 2.0], [7.0, 3.0, 8.0], [4.0, 9.0, 6.0]]).reshape(1, 1, 3, 3)
    # size 2, stride 1, default padding 1: offset 0, the last window hangs over the edge.
    out = run(net("[maxpool]\nsize=2\nstride=1\n", 1, 3, 3), x)[0]
    assert out[0, 0].tolist() == [[7, 8, 8], [9, 9, 8], [9, 9, 6]]
    # size 3, stride 2, padding 2: offset -1.
    out = run(net("[maxpool]\nsize=3\nstride=2\n", 1, 3, 3), x)[0]
    assert out[0, 0].tolist() == [[7, 8], [9, 9]]


def test_a_window_wholly_outside_the_input_is_minus_flt_max_as_in_darknet():
    out = run(net("[maxpool]\nsize=1\nstride=1\npadding=2\n", 1, 2, 2), np.ones((1, 1, 2, 2)))[0]
    assert out.shape == (1, 1, 4, 4)
    assert out[0, 0, 0, 0] == -FLT_MAX and out[0, 0, 1, 1] == 1.0


def test_avgpool_is_the_mean_of_each_channel():
    x = np.arange(12.0).reshape(1, 2, 2, 3)
    assert run(net("[avgpool]\n", 2, 2, 3), x)[0].reshape(-1).tolist() == [2.5, 8.5]


def test_softmax_in_groups_with_temperature():
    x = np.array([0.0, math.log(3.0), 1.0, 1.0]).reshape(1, 4, 1, 1)
    out = run(net("[softmax]\ngroups=2\n", 4, 1, 1), x)[0].reshape(-1)
    np.testing.assert_allclose(out, [0.25, 0.75, 0.5, 0.5], rtol=1e-15)
    hot = run(net("[softmax]\ntemperature=0.5\n", 2, 1, 1), x[:, :2])[0].reshape(-1)
    np.testing.assert_allclose(hot, [0.1, 0.9], rtol=1e-14)  # exp(2 x): 1 and 9


@pytest.mark.parametrize("name, x, expected", [
    ("linear", -2.0, -2.0), ("leaky", -2.0, -0.2), ("leaky", 3.0, 3.0), ("relu", -2.0, 0.0),
    ("relie", -2.0, -0.02), ("ramp", -2.0, -0.2), ("ramp", 2.0, 2.2), ("logistic", 0.0, 0.5),
    ("loggy", 0.0, 0.0), ("loggy", math.log(3.0), 0.5), ("tanh", 0.5, math.tanh(0.5)),
    ("elu", -1.0, math.exp(-1) - 1), ("elu", 2.0, 2.0), ("selu", 1.0, 1.0507),
    ("selu", -1.0, 1.0507 * 1.6732 * (math.exp(-1) - 1)), ("plse", -5.0, -0.01), ("plse", 0.0, 0.5),
    ("plse", 5.0, 1.01), ("stair", 2.5, 1.0), ("stair", 3.5, 1.5), ("stair", -1.5, -1.0),
    ("stair", -2.5, -1.5), ("hardtan", 3.0, 1.0), ("hardtan", -0.5, -0.5), ("lhtan", 2.0, 1.001),
    ("lhtan", -1.0, -0.001), ("lhtan", 0.5, 0.5),
])
def test_activation_values_from_darknets_formulas(name, x, expected):
    assert activate(np.array([x]), name)[0] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_activations_stay_finite_at_extremes():
    x = np.array([-1e4, -800.0, 0.0, 800.0, 1e4])
    for name in ACTIVATIONS:
        assert np.isfinite(activate(x, name)).all(), name


def test_the_program_passes_each_layer_the_outputs_of_its_sources(monkeypatch):
    seen = []

    def recording(node, params, x, sources):
        seen.append((node.index, [s.shape for s in sources]))
        return x + 1

    graph = graph_from_text(net("[dropout]\n[dropout]\n[dropout]\n", 1, 2, 2))
    nodes = (graph.nodes[0], graph.nodes[1], replace(graph.nodes[2], sources=(0, 1)))
    monkeypatch.setitem(LAYERS, "dropout", recording)
    outs = ReferenceProgram(replace(graph, nodes=nodes), [{}, {}, {}]).run_layers(np.zeros((1, 1, 2, 2), np.float32))
    assert seen == [(0, []), (1, []), (2, [(1, 1, 2, 2), (1, 1, 2, 2)])]
    assert [out.dtype for out in outs] == [np.float32] * 3 and outs[2].max() == 3


def test_registered_as_a_builtin_that_auto_never_picks():
    backends = hermetic_backends()
    assert backends.entries["reference"].plugin == "tdn.testing.reference" == reference.__name__
    backend = backends.get("reference")
    assert backend.precisions == ("fp64",) and not backend.folded_batchnorm
    assert backends.get("auto").name != "reference" and backend.priority < backends.get("numpy").priority


def test_importing_the_reference_needs_no_hypothesis():
    import subprocess
    import sys

    code = ("import sys; sys.modules['hypothesis'] = None; import tdn.testing.reference, tdn.plugins; "
            "print(tdn.plugins.registry().get('reference').name)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "reference", result.stderr
