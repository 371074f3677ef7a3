import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tdn.errors import WeightsError
from tdn.graph import graph_from_text, load_graph
from tdn.layers.convolutional import BATCHNORM_EPSILON
from tdn.weights import Header, expected_floats, random_params, read_weights, write_weights

SMALL = "[net]\nwidth=9\nheight=7\nchannels=3\n[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\n" \
        "activation=leaky\n[maxpool]\n[convolutional]\nfilters=5\nsize=1\ngroups=1\nactivation=linear\n[avgpool]\n[softmax]\n"


def test_trained_tiny_weights_old_16_byte_header(shared):
    header, params = read_weights(shared / "weights" / "tiny.weights", load_graph("cfg/tiny.cfg"))
    assert (header.major, header.minor, header.revision, header.seen) == (0, 1, 0, 204800000)
    assert header.size == 16 and not header.transpose
    assert params[0]["weights"].shape == (16, 3, 3, 3)
    assert set(params[19]) == {"biases", "weights"}  # the logit layer has no batch-norm


def test_random_tiny_weights_20_byte_header(shared):
    header, params = read_weights(shared / "weights" / "tiny-random.weights", load_graph("cfg/tiny.cfg"))
    assert (header.major, header.minor, header.seen) == (0, 2, 0)
    assert header.size == 20
    assert sum(a.size for p in params for a in p.values()) == 1046488


@pytest.mark.parametrize("header, size, transpose", [
    (Header(0, 1), 16, False), (Header(0, 2), 20, False), (Header(1, 0), 20, False),
    (Header(0, 1001), 16, True), (Header(1001, 0), 16, True), (Header(0, 0), 16, False),
])
def test_header_variants(header, size, transpose):
    assert header.size == size and header.transpose == transpose


@pytest.mark.parametrize("delta, word", [(-4, "truncated"), (-1, "truncated"), (4, "too long"), (1, "too long")])
def test_wrong_size_says_expected_and_found_bytes(tmp_path, delta, word, shared):
    data = (shared / "weights" / "tiny.weights").read_bytes()
    path = tmp_path / "bad.weights"
    path.write_bytes(data[:delta] if delta < 0 else data + b"\0" * delta)
    with pytest.raises(WeightsError) as raised:
        read_weights(path, load_graph("cfg/tiny.cfg"))
    message = str(raised.value)
    assert "expected 4185968 bytes" in message and f"found {4185968 + delta}" in message and word in message


def test_header_too_short(tmp_path):
    path = tmp_path / "h.weights"
    path.write_bytes(b"\0" * 8)
    with pytest.raises(WeightsError, match="8 bytes is too short for a Darknet weights header"):
        read_weights(path, graph_from_text(SMALL))


def test_missing_weights_file(tmp_path):
    with pytest.raises(WeightsError, match="cannot read weights"):
        read_weights(tmp_path / "none.weights", graph_from_text(SMALL))


HEADERS = [Header(0, 1, 0, 7), Header(0, 2, 5, 2**40), Header(0, 1001, 0, 3)]


@given(seed=st.integers(0, 2**32 - 1), header=st.sampled_from(HEADERS))
def test_writer_and_reader_round_trip(tmp_path_factory, seed, header):
    graph = graph_from_text(SMALL)
    params = random_params(graph, seed)
    path = tmp_path_factory.mktemp("w") / "r.weights"
    write_weights(path, graph, params, header)
    assert path.stat().st_size == header.size + 4 * expected_floats(graph)
    read_header, read_params = read_weights(path, graph)
    assert read_header == header
    for a, b in zip(params, read_params):
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])


def test_folded_batchnorm_matches_darknets_formula():
    graph = graph_from_text(SMALL)
    raw = random_params(graph, 3)[0]
    folded = graph.layers[0].fold(raw)
    x = np.random.default_rng(0).standard_normal((4, 3 * 3 * 3)).astype(np.float64)
    conv = x @ raw["weights"].reshape(4, -1).T.astype(np.float64)
    # normalize_cpu: (x - mean) / (sqrt(var) + .000001f), then scale, then bias.
    darknet = (conv - raw["rolling_mean"]) / (np.sqrt(raw["rolling_variance"]) + float(BATCHNORM_EPSILON))
    darknet = darknet * raw["scales"] + raw["biases"]
    ours = x @ folded["weights"].reshape(4, -1).T.astype(np.float64) + folded["biases"]
    np.testing.assert_allclose(ours, darknet, rtol=1e-5, atol=1e-5)
    assert BATCHNORM_EPSILON == np.float32(1e-6)


CONNECTED = ("[net]\nwidth=3\nheight=2\nchannels=2\n[connected]\noutput=5\nbatch_normalize=1\nactivation=leaky\n"
             "[batchnorm]\n[connected]\noutput=4\nactivation=linear\n[softmax]\n")


def test_connected_and_batchnorm_read_in_darknets_file_order(tmp_path, shared):
    # make_weights.py writes biases, weights, then scales/mean/variance for [connected], and
    # scales/mean/variance for [batchnorm]; the transposed file holds (inputs, outputs) weights.
    cfg = tmp_path / "connected.cfg"
    cfg.write_text(CONNECTED)
    tool = shared / "tools" / "make_weights.py"
    subprocess.run([sys.executable, str(tool), str(cfg), str(tmp_path / "plain.weights"), "--seed", "4"],
                   check=True, capture_output=True)
    subprocess.run([sys.executable, str(tool), str(cfg), str(tmp_path / "old.weights"), "--seed", "4",
                    "--transpose-connected"], check=True, capture_output=True)
    graph = load_graph(cfg)
    assert [name for name, _ in graph.nodes[0].layer.weight_layout(graph.nodes[0].in_shape)] == [
        "biases", "weights", "scales", "rolling_mean", "rolling_variance"]
    plain_header, plain = read_weights(tmp_path / "plain.weights", graph)
    old_header, old = read_weights(tmp_path / "old.weights", graph)
    assert not plain_header.transpose and old_header.transpose and old_header.size == 16
    assert plain[0]["weights"].shape == (5, 12) and plain[1]["scales"].shape == (5,)
    assert plain[2]["weights"].flags.c_contiguous and old[2]["weights"].flags.c_contiguous
    for ours, theirs in zip(plain, old):
        assert ours.keys() == theirs.keys()
        for name in ours:
            np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    # Scales and variances are drawn from U(0.5, 1.5): the order of the arrays is right.
    assert plain[0]["scales"].min() >= 0.5 and plain[1]["rolling_variance"].min() >= 0.5
    # Writing with the transpose flag gives the same bytes back.
    write_weights(tmp_path / "again.weights", graph, old, old_header)
    assert (tmp_path / "again.weights").read_bytes() == (tmp_path / "old.weights").read_bytes()


def test_batchnorm_folds_with_the_epsilon_after_the_root():
    graph = graph_from_text(CONNECTED)
    raw = random_params(graph, 1)
    folded = graph.layers[1].fold(raw[1])
    factor = raw[1]["scales"] / (np.sqrt(raw[1]["rolling_variance"]) + BATCHNORM_EPSILON)
    np.testing.assert_allclose(folded["scales"], factor, rtol=1e-7)
    np.testing.assert_allclose(folded["biases"], -raw[1]["rolling_mean"] * factor, rtol=1e-6)
    connected = graph.layers[0].fold(raw[0])
    assert set(connected) == {"weights", "biases"} and connected["weights"].shape == (5, 12)
