"""Each layer kind the zoo added, in both NumPy backends, against the float64 reference.

A small cfg gives each tested node its shapes; the node then runs on its own with random
inputs (and random source outputs), so every option and shape combination is reached
without running the layers before it. Tolerances: float32 against float64, relative
1e-5 for the element-wise kinds and 1e-4 for the connected layer's long sums.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tdn.backends.numpy.backend import ExactNumpyProgram, NumpyProgram

from tdn.graph import graph_from_text
from tdn.testing.reference import LAYERS
from tdn.weights import random_params

ACTIVATIONS = ("linear", "leaky", "relu", "logistic", "tanh")


def run_node(text: str, index: int, seed: int, batch: int = 2):
    """The node's output from numpy, numpy-exact and the reference, for random inputs."""
    graph = graph_from_text(text, "<test>")
    node = graph.nodes[index]
    rng = np.random.default_rng(seed)
    raw = random_params(graph, seed)[index]
    x = rng.standard_normal((batch, *node.in_shape)).astype(np.float32)
    sources = tuple(rng.standard_normal((batch, *graph.nodes[i].out_shape)).astype(np.float32)
                    for i in node.sources)
    fast = NumpyProgram(graph, [None] * len(graph.nodes)).forward(node, node.layer.fold(raw), x, sources)
    exact = ExactNumpyProgram(graph, [None] * len(graph.nodes)).forward(node, raw, x, sources)
    reference = LAYERS[node.kind](node, raw, x, sources)
    return node, fast, exact, reference


def check(node, fast, exact, reference, rtol: float, atol: float) -> None:
    expected = (len(reference), *node.out_shape)
    for backend, out in (("numpy", fast), ("numpy-exact", exact)):
        where = f"{backend} [{node.kind}] {node.layer}"
        assert out.shape == expected, f"{where}: shape {out.shape}, expected {expected}"
        assert out.dtype == np.float32, f"{where}: dtype {out.dtype}"
        np.testing.assert_allclose(out, reference, rtol=rtol, atol=atol, err_msg=where)


@given(channels=st.integers(1, 4), size=st.integers(1, 4), outputs=st.integers(1, 9),
       batch_normalize=st.booleans(), activation=st.sampled_from(ACTIVATIONS), seed=st.integers(0, 99))
def test_connected(channels, size, outputs, batch_normalize, activation, seed):
    text = (f"[net]\nchannels={channels}\nheight={size}\nwidth={size + 1}\n"
            f"[connected]\noutput={outputs}\nbatch_normalize={int(batch_normalize)}\nactivation={activation}\n")
    check(*run_node(text, 0, seed), rtol=1e-4, atol=1e-5)


@given(c_from=st.integers(1, 4), c_in=st.integers(1, 4), size=st.integers(1, 4), ratio=st.integers(1, 3),
       from_is_larger=st.booleans(), activation=st.sampled_from(ACTIVATIONS),
       alpha=st.sampled_from((1.0, 0.5)), beta=st.sampled_from((1.0, 2.0)), seed=st.integers(0, 99))
def test_shortcut_with_equal_and_differing_shapes(c_from, c_in, size, ratio, from_is_larger, activation,
                                                  alpha, beta, seed):
    # Layer 0 makes the `from` output; layer 1 changes width and height by `ratio` either way.
    big, small = size * ratio, size
    height, resample = ((big, f"[maxpool]\nsize={ratio}\nstride={ratio}\n") if from_is_larger
                        else (small, f"[upsample]\nstride={ratio}\n"))
    text = (f"[net]\nchannels={c_from}\nheight={height}\nwidth={height}\n"
            f"[convolutional]\nfilters={c_from}\nsize=1\n" + resample +
            f"[convolutional]\nfilters={c_in}\nsize=1\n"
            f"[shortcut]\nfrom=0\nactivation={activation}\nalpha={alpha}\nbeta={beta}\n")
    check(*run_node(text, 3, seed), rtol=1e-5, atol=1e-6)


def test_shortcut_sums_exactly_where_shapes_overlap():
    node, fast, exact, reference = run_node("[net]\nchannels=2\nheight=4\nwidth=4\n[convolutional]\nfilters=3\n"
                                            "size=1\n[maxpool]\nsize=2\nstride=2\n[convolutional]\nfilters=2\n"
                                            "size=1\n[shortcut]\nfrom=-3\n", 3, 0)
    assert node.sources == (0,)
    # The 2-channel 2x2 input plus the 3-channel 4x4 output of layer 0, sampled every 2 cells.
    for out in (fast, exact):
        np.testing.assert_array_equal(out, reference.astype(np.float32))


@given(channels=st.lists(st.integers(1, 3), min_size=1, max_size=3), groups=st.integers(1, 3),
       data=st.data(), seed=st.integers(0, 99))
def test_route_with_groups(channels, groups, data, seed):
    group_id = data.draw(st.integers(0, groups - 1))
    layers = "".join(f"[convolutional]\nfilters={c * groups}\nsize=1\n" for c in channels)
    # Mixed absolute and negative indices: the first source absolute, the others relative.
    count = len(channels)
    refs = ["0"] + [str(i - count) for i in range(1, count)]
    text = (f"[net]\nchannels=2\nheight=3\nwidth=4\n{layers}"
            f"[route]\nlayers={','.join(refs)}\ngroups={groups}\ngroup_id={group_id}\n")
    node, fast, exact, reference = run_node(text, count, seed)
    assert node.sources == tuple(range(count))
    assert node.out_shape == (sum(channels), 3, 4)
    for out in (fast, exact):
        np.testing.assert_array_equal(out, reference.astype(np.float32))


@given(height=st.integers(1, 7), width=st.integers(1, 7), data=st.data(), noadjust=st.booleans(),
       seed=st.integers(0, 99))
def test_crop(height, width, data, noadjust, seed):
    crop_h, crop_w = data.draw(st.integers(1, height)), data.draw(st.integers(1, width))
    text = (f"[net]\nchannels=2\nheight={height}\nwidth={width}\n"
            f"[crop]\ncrop_height={crop_h}\ncrop_width={crop_w}\nnoadjust={int(noadjust)}\nflip=1\n")
    node, fast, exact, reference = run_node(text, 0, seed)
    for out in (fast, exact):
        np.testing.assert_array_equal(out, reference.astype(np.float32))


@given(channels=st.integers(1, 4), height=st.integers(1, 4), width=st.integers(1, 4), seed=st.integers(0, 99))
def test_batchnorm(channels, height, width, seed):
    text = f"[net]\nchannels={channels}\nheight={height}\nwidth={width}\n[batchnorm]\n"
    check(*run_node(text, 0, seed), rtol=1e-5, atol=1e-6)


@given(stride=st.integers(1, 3), scale=st.sampled_from((1.0, 0.5, 3.0)), seed=st.integers(0, 99))
def test_upsample(stride, scale, seed):
    text = f"[net]\nchannels=2\nheight=3\nwidth=2\n[upsample]\nstride={stride}\nscale={scale}\n"
    node, fast, exact, reference = run_node(text, 0, seed)
    for out in (fast, exact):
        np.testing.assert_array_equal(out, reference.astype(np.float32))


def test_dropout_is_the_identity_at_inference():
    text = "[net]\nchannels=2\nheight=3\nwidth=2\n[dropout]\nprobability=.3\n"
    graph = graph_from_text(text)
    x = np.random.default_rng(0).standard_normal((2, 2, 3, 2)).astype(np.float32)
    for program in (NumpyProgram, ExactNumpyProgram):
        np.testing.assert_array_equal(program(graph, [{}]).run(x), x)


@pytest.mark.parametrize("program", [NumpyProgram, ExactNumpyProgram])
def test_a_whole_residual_network_keeps_the_outputs_later_layers_read(program):
    text = ("[net]\nchannels=3\nheight=8\nwidth=8\n[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
            "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=linear\n[shortcut]\nfrom=-2\n"
            "[route]\nlayers=-1,0\n[batchnorm]\n[upsample]\n[crop]\ncrop_height=12\ncrop_width=12\n"
            "[connected]\noutput=5\nactivation=linear\n[softmax]\n")
    graph = graph_from_text(text)
    params = random_params(graph, 3)
    params = params if program.exact else [node.layer.fold(p) for node, p in zip(graph.nodes, params)]
    x = np.random.default_rng(1).random((2, 3, 8, 8), np.float32)
    layers = program(graph, params).run_layers(x)
    assert [out.shape[1:] for out in layers] == [node.out_shape for node in graph.nodes]
    # Recompute each layer from the kept outputs with the reference: the program fed the right sources.
    for node, out in zip(graph.nodes, layers):
        if node.kind in LAYERS:
            x_in = layers[node.index - 1] if node.index else x
            expected = LAYERS[node.kind](node, random_params(graph, 3)[node.index], x_in,
                                         tuple(layers[i] for i in node.sources))
            np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5, err_msg=f"layer {node.index}")
    np.testing.assert_allclose(program(graph, params).run(x), layers[-1], rtol=0, atol=0)
