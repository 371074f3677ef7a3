"""On a GPU: every CUDA kernel against the NumPy backend or a plain NumPy formula, and the
Darknet reference through the cuda backend at each precision. Skipped, with the reason, where
CuPy or a GPU is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tdn.backends.cuda.backend import cuda_unavailable_reason
from tdn.backends.numpy.convolution import convolve
from tdn.backends.numpy.pooling import avgpool, maxpool
from tdn.backends.numpy.softmax import softmax

from tdn.activations import ACTIVATIONS
from tdn.graph import load_graph
from tdn.layers.convolutional import Convolutional
from tdn.layers.crop import Crop
from tdn.layers.maxpool import Maxpool
from tdn.layers.softmax import Softmax
from tdn.network import Network, load
from tdn.plugins import registry
from tdn.weights import random_params
from tests import cuda_formulas as formulas

REASON = cuda_unavailable_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=f"no GPU: {REASON}")]
REPO = Path(__file__).resolve().parent.parent
# (rtol, atol) on the final probabilities against Darknet's, per precision: the README's
# "CUDA backend" table states the same numbers.
TOLERANCE = {"fp32": (1e-4, 1e-6), "tf32": (3e-2, 1e-4), "fp16": (3e-2, 1e-4)}
CONV_TOLERANCE = {"fp32": 1e-4, "tf32": 1e-2, "fp16": 1e-2}


def _device(array):
    import cupy

    return cupy.asarray(array)


@given(cg=st.integers(1, 9), mg=st.integers(1, 80), groups=st.integers(1, 3), size=st.integers(1, 3),
       stride=st.integers(1, 2), padding=st.integers(0, 2), batch=st.integers(1, 3),
       height=st.integers(3, 20), width=st.integers(3, 20), activation=st.sampled_from(ACTIVATIONS),
       precision=st.sampled_from(sorted(CONV_TOLERANCE)), seed=st.integers(0, 2**31))
def test_conv_matches_numpy(cg, mg, groups, size, stride, padding, batch, height, width, activation,
                            precision, seed):
    from tdn.backends.cuda import kernels, tiling

    rng = np.random.default_rng(seed)
    layer = Convolutional(mg * groups, size, stride, padding, groups, False, activation)
    in_shape = (cg * groups, height, width)
    out_shape = layer.output_shape(in_shape)
    x = rng.standard_normal((batch, *in_shape)).astype(np.float32)
    weights = rng.standard_normal((mg * groups, cg, size, size)).astype(np.float32)
    weights /= np.float32(np.sqrt(cg * size * size))
    bias = rng.standard_normal(mg * groups).astype(np.float32)
    geo = tiling.ConvGeometry.of(layer, in_shape, out_shape, batch)
    y = _device(np.full((batch, *out_shape), np.nan, np.float32))
    kernels.conv(_device(x), _device(geo.pack_weights(weights)), _device(bias), y, geo, precision)
    expected = convolve(x, layer, weights, bias, *out_shape[1:])
    tol = CONV_TOLERANCE[precision]
    np.testing.assert_allclose(y.get(), expected, rtol=tol, atol=tol)


@given(size=st.integers(1, 4), stride=st.integers(1, 3), padding=st.integers(0, 4),
       shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(4, 17), st.integers(4, 17)),
       seed=st.integers(0, 2**31))
def test_maxpool_matches_numpy(size, stride, padding, shape, seed):
    from tdn.backends.cuda import kernels

    layer = Maxpool(size, stride, padding)
    _, oh, ow = layer.output_shape(shape[1:])
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    y = _device(np.zeros((*shape[:2], oh, ow), np.float32))
    kernels.maxpool(_device(x), y, size, stride, layer.offset)
    np.testing.assert_array_equal(y.get(), maxpool(x, layer, oh, ow))


@given(batch=st.integers(1, 4), groups=st.sampled_from([1, 2, 4]), per_group=st.integers(1, 300),
       plane=st.tuples(st.integers(1, 20), st.integers(1, 20)), fused=st.booleans(),
       temperature=st.floats(0.25, 4.0), seed=st.integers(0, 2**31))
def test_avgpool_softmax_matches_numpy(batch, groups, per_group, plane, fused, temperature, seed):
    from tdn.backends.cuda import kernels

    c = groups * per_group
    x = np.random.default_rng(seed).standard_normal((batch, c, *plane)).astype(np.float32) * 4
    pooled = _device(np.zeros((batch, c, 1, 1), np.float32))
    probs = _device(np.zeros((batch, c, 1, 1), np.float32))
    kernels.avgpool_softmax(_device(x), pooled, probs if fused else None, groups, temperature)
    expected_pooled = avgpool(x)
    np.testing.assert_allclose(pooled.get(), expected_pooled, rtol=1e-5, atol=1e-6)
    if fused:
        expected = softmax(expected_pooled, Softmax(groups, temperature))
        np.testing.assert_allclose(probs.get(), expected, rtol=1e-4, atol=1e-7)


@given(batch=st.integers(1, 3), groups=st.sampled_from([1, 3]), shape=st.tuples(
       st.integers(1, 30), st.integers(1, 6), st.integers(1, 6)), seed=st.integers(0, 2**31))
def test_softmax_matches_numpy(batch, groups, shape, seed):
    from tdn.backends.cuda import kernels

    total = int(np.prod(shape)) * groups
    x = np.random.default_rng(seed).standard_normal((batch, shape[0] * groups, *shape[1:])).astype(np.float32)
    y = _device(np.zeros((batch, total, 1, 1), np.float32))
    kernels.softmax(_device(x), y, groups, 1.0)
    np.testing.assert_allclose(y.get(), softmax(x, Softmax(groups, 1.0)), rtol=1e-4, atol=1e-7)


@given(batch=st.integers(1, 20), inputs=st.integers(1, 600), outputs=st.integers(1, 40),
       image=st.booleans(), activation=st.sampled_from(ACTIVATIONS), seed=st.integers(0, 2**31))
def test_connected_matches_formula(batch, inputs, outputs, image, activation, seed):
    """Batches across several image tiles, inputs across the 256-value staging chunks."""
    from tdn.backends.cuda import kernels

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, inputs, 1, 1) if image else (batch, inputs)).astype(np.float32)
    weights = (rng.standard_normal((outputs, inputs)) / np.sqrt(inputs)).astype(np.float32)
    bias = rng.standard_normal(outputs).astype(np.float32)
    y = _device(np.full((batch, outputs), np.nan, np.float32))
    kernels.connected(_device(x), _device(weights), _device(bias), y, activation)
    np.testing.assert_allclose(y.get(), formulas.connected(x, weights, bias, activation), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 8, 64, 256])
def test_connected_at_the_benchmark_batches(batch):
    from tdn.backends.cuda import kernels

    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 64, 4, 4)).astype(np.float32)
    weights = (rng.standard_normal((1000, 1024)) / 32).astype(np.float32)
    bias = rng.standard_normal(1000).astype(np.float32)
    y = _device(np.full((batch, 1000, 1, 1), np.nan, np.float32))
    kernels.connected(_device(x), _device(weights), _device(bias), y, "leaky")
    np.testing.assert_allclose(y.get().reshape(batch, -1), formulas.connected(x, weights, bias, "leaky"),
                               rtol=1e-4, atol=1e-5)


@given(batch=st.integers(1, 3), channels=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       size=st.integers(1, 9), factor=st.integers(1, 3), from_larger=st.booleans(),
       alpha=st.sampled_from([1.0, 0.5]), beta=st.sampled_from([1.0, -1.5]),
       activation=st.sampled_from(ACTIVATIONS), seed=st.integers(0, 2**31))
def test_shortcut_matches_formula(batch, channels, size, factor, from_larger, alpha, beta, activation, seed):
    from tdn.backends.cuda import kernels

    rng = np.random.default_rng(seed)
    small, large = (size, size), (size * factor, size * factor)
    x_hw, from_hw = (small, large) if from_larger else (large, small)
    x = rng.standard_normal((batch, channels[0], *x_hw)).astype(np.float32)
    source = rng.standard_normal((batch, channels[1], *from_hw)).astype(np.float32)
    y = _device(np.full(x.shape, np.nan, np.float32))
    kernels.shortcut(_device(x), _device(source), y, alpha, beta, activation)
    np.testing.assert_allclose(y.get(), formulas.shortcut(x, source, alpha, beta, activation),
                               rtol=1e-5, atol=1e-6)


@given(batch=st.integers(1, 3), channels=st.lists(st.integers(1, 5), min_size=1, max_size=4),
       groups=st.integers(1, 3), plane=st.tuples(st.integers(1, 9), st.integers(1, 9)), data=st.data())
def test_route_matches_formula(batch, channels, groups, plane, data):
    import cupy
    from tdn.backends.cuda import kernels

    group_id = data.draw(st.integers(0, groups - 1))
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((batch, c * groups, *plane)).astype(np.float32) for c in channels]
    y = _device(np.full((batch, sum(channels), *plane), np.nan, np.float32))
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:  # the copies go to the current stream
        kernels.route([_device(a) for a in inputs], y, groups, group_id)
        stream.synchronize()
    np.testing.assert_array_equal(y.get(), formulas.route(inputs, groups, group_id))


@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 12), st.integers(1, 12)),
       stride=st.integers(1, 4), scale=st.sampled_from([1.0, 0.5, -2.0]), seed=st.integers(0, 2**31))
def test_upsample_matches_formula(shape, stride, scale, seed):
    from tdn.backends.cuda import kernels

    n, c, h, w = shape
    x = np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(np.float32)
    y = _device(np.full((n, c, h * stride, w * stride), np.nan, np.float32))
    kernels.upsample(_device(x), y, stride, scale)
    np.testing.assert_allclose(y.get(), formulas.upsample(x, stride, scale), rtol=1e-6, atol=1e-6)


@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 40), st.integers(1, 9), st.integers(1, 9)),
       seed=st.integers(0, 2**31))
def test_batchnorm_matches_formula(shape, seed):
    from tdn.backends.cuda import kernels

    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    scale, shift = (rng.standard_normal(shape[1]).astype(np.float32) for _ in range(2))
    y = _device(np.full(shape, np.nan, np.float32))
    kernels.batchnorm(_device(x), _device(scale), _device(shift), y)
    np.testing.assert_array_equal(y.get(), formulas.batchnorm(x, scale, shift))


@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 20), st.integers(1, 20)),
       data=st.data(), noadjust=st.booleans(), seed=st.integers(0, 2**31))
def test_crop_matches_formula(shape, data, noadjust, seed):
    from tdn.backends.cuda import kernels

    out_h, out_w = data.draw(st.integers(1, shape[2])), data.draw(st.integers(1, shape[3]))
    x = np.random.default_rng(seed).random(shape).astype(np.float32)
    y = _device(np.full((*shape[:2], out_h, out_w), np.nan, np.float32))
    layer = Crop(crop_height=out_h, crop_width=out_w, noadjust=noadjust)
    kernels.crop(_device(x), y, layer.scale, layer.shift)
    np.testing.assert_array_equal(y.get(), formulas.crop(x, out_h, out_w, noadjust))


CASES = [("tiny", mode, "tiny-random.weights") for mode in ("letterbox", "resize_min", "stretch")] + \
        [("real", mode, "tiny.weights") for mode in ("letterbox", "resize_min", "stretch")]


def test_tolerances_cover_every_precision():
    from tdn.backends.cuda.backend import CudaBackend

    assert set(TOLERANCE) == set(CONV_TOLERANCE) == set(CudaBackend.precisions)


@pytest.mark.parametrize("precision", sorted(TOLERANCE))
@pytest.mark.parametrize("prefix, mode, weights", CASES)
def test_reference_outputs(shared, precision, prefix, mode, weights):
    folder = shared / "reference" / ("real" if prefix == "real" else "")
    x = np.load(folder / f"{prefix}_dog_{mode}_input.npy")
    expected = np.load(folder / f"{prefix}_dog_{mode}_output.npy")
    net = load(REPO / "cfg/tiny.cfg", shared / "weights" / weights, "cuda", precision=precision)
    assert net.precision == precision
    rtol, atol = TOLERANCE[precision]
    probs = net.predict(x)
    np.testing.assert_allclose(probs, expected, rtol=rtol, atol=atol)
    assert np.argmax(probs) == np.argmax(expected)
    # Replaying the captured graph with a batch gives every image the same answer.
    batch = net.predict(np.stack([x, x, x]))
    np.testing.assert_allclose(batch, np.stack([probs] * 3), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("mode", ["letterbox", "resize_min"])
def test_reference_layers(shared, mode):
    x = np.load(shared / "reference" / f"tiny_dog_{mode}_input.npy")
    net = load(REPO / "cfg/tiny.cfg", shared / "weights/tiny-random.weights", "cuda")
    for index, out in enumerate(net.predict_layers(x)):
        kind = net.graph.nodes[index].kind
        ref = np.load(shared / "reference" / f"tiny_dog_{mode}_layer{index:02d}_{kind}.npy")
        np.testing.assert_allclose(out.reshape(ref.shape), ref, rtol=1e-4, atol=1e-4,
                                   err_msg=f"layer {index} {kind}")


def _classify(shared, *options) -> list[str]:
    """The prediction lines ("17.03%: malamute"), without the first line's timing."""
    lines = subprocess.run(
        [sys.executable, "-c", "import sys; from tdn.cli import main; sys.exit(main())",
         "classify", *options, "--format", "darknet-master",
         "--names", str(shared / "data/imagenet.shortnames.list"), str(REPO / "cfg/tiny.cfg"),
         str(shared / "weights/tiny.weights"), str(shared / "images/dog.jpg")],
        capture_output=True, text=True, check=True).stdout.splitlines()
    assert "Predicted in" in lines[0]
    return lines[1:]


def test_classify_cli_matches_numpy(shared):
    cuda = _classify(shared, "--backend", "cuda")
    assert cuda[0].endswith(": malamute") and cuda == _classify(shared, "--backend", "numpy")


@pytest.mark.parametrize("precision", ["tf32", "fp16"])
def test_classify_cli_tensor_core_precisions_keep_the_top_class(shared, precision):
    top = _classify(shared, "--backend", "cuda", "--precision", precision)[0]
    assert top.split(": ", 1)[1] == "malamute"


@pytest.mark.parametrize("name", ["darknet", "darknet53", "resnet18", "resnet50", "alexnet", "vgg-16"])
def test_zoo_networks_match_numpy_layer_by_layer(shared, name):
    """Every layer kind of the zoo (connected, shortcut, route, crop...) through the whole CUDA
    plan, against the numpy backend on the same random weights, at the cfg's own size."""
    graph = load_graph(shared / "cfg" / f"{name}.cfg")
    params = random_params(graph)
    x = np.random.default_rng(0).random((2, *graph.input_shape), np.float32)
    ours = Network(graph, params, registry().get("cuda")).predict_layers(x)
    theirs = Network(graph, params, registry().get("numpy")).predict_layers(x)
    for node, mine, expected in zip(graph.nodes, ours, theirs):
        scale = float(np.abs(expected).max()) or 1.0
        assert np.abs(mine - expected).max() <= 1e-4 * scale, f"{name} layer {node.index} [{node.kind}]"
