"""Every CUDA kernel against the NumPy backend or a plain NumPy formula, and the Darknet reference
and the zoo through the cuda backend at each precision: on a GPU where there is one, else in
interpret mode (kernels/*.cu compiled for the CPU; tests/conftest.py's cuda_device), where every
kernel launch runs under every schedule of the interpreter and whole networks one schedule per
launch. Skipped, with the reason, only where neither can run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tdn.backends.cuda import layout, tiling
from tdn.backends.cuda.device import device
from tdn.backends.numpy.convolution import convolve
from tdn.backends.numpy.pooling import avgpool, maxpool
from tdn.backends.numpy.softmax import softmax

from tdn.activations import ACTIVATIONS
from tdn.graph import graph_from_text
from tdn.layers.connected import weights_in_hwc_order
from tdn.layers.convolutional import Convolutional
from tdn.layers.crop import Crop
from tdn.layers.maxpool import Maxpool
from tdn.layers.softmax import Softmax
from tdn.network import Network, load
from tdn.plugins import registry
from tdn.testing.tolerances import tolerance
from tdn.weights import random_params
from tests import cuda_formulas as formulas
from tests.conftest import CUDA_INTERPRETED, CUDA_REASON
from tests.test_cli import PAGE
from tests.test_zoo import CFGS, DISTINCT, small_cfg_text

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("cuda_device"),
              pytest.mark.skipif(CUDA_REASON is not None, reason=f"no GPU, no interpreter: {CUDA_REASON}")]
# Hypothesis examples per kernel property: fewer on the CPU interpreter, which keeps this file
# within its minutes there.
examples = settings(max_examples=12) if CUDA_INTERPRETED else settings()
REPO = Path(__file__).resolve().parent.parent
# (rtol, atol) on the final probabilities against Darknet's, per precision: the README's
# "CUDA backend" table states the same numbers.
TOLERANCE = {"fp32": (1e-4, 1e-6), "tf32": (3e-2, 1e-4), "fp16": (3e-2, 1e-4)}
CONV_TOLERANCE = {"fp32": 1e-4, "tf32": 1e-2, "fp16": 1e-2}


# The activation storage types: float32 (fp32, tf32 networks) and float16 (fp16 networks).
STORAGES = [np.float32, np.float16]


def _device(array):
    """Weights, biases, tables: float32 as given."""
    return device().upload(array)


def _activations(x: np.ndarray, storage=np.float32):
    """An (N, C, H, W) array as the device stores activations: NHWC, of `storage`."""
    return device().upload(layout.to_nhwc(x), storage)


def _empty(nchw: tuple[int, ...], storage=np.float32):
    """An activation buffer for (N, C, H, W) values, NHWC on the device."""
    n, c, h, w = nchw
    return device().empty((n, h, w, c), storage)


def _host(array) -> np.ndarray:
    """An activation buffer back as (N, C, H, W) float32."""
    return layout.to_nchw(device().download(array))


def _stored(x: np.ndarray, storage) -> np.ndarray:
    """x as float32 after being stored as `storage` (float16 rounds it; past 65504, to infinity)."""
    with np.errstate(over="ignore"):
        return x.astype(storage).astype(np.float32)


@examples
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
    storage = layout.STORAGE[precision]
    y = _empty((batch, *out_shape), storage)
    packed = device().upload(geo.pack_weights(weights), storage)
    kernels.conv(_activations(x, storage), packed, _device(bias), y, geo, precision)
    expected = convolve(_stored(x, storage), layer, weights, bias, *out_shape[1:])
    tol = CONV_TOLERANCE[precision]
    np.testing.assert_allclose(_host(y), expected, rtol=tol, atol=tol)


# Small shapes that reach each variant's edges: filters and pixels in partial tiles, groups,
# stride and padding, several k tiles. (batch, channels, height, width, filters, size, stride,
# padding, groups, activation); activations without libm calls, whose digits depend on the libm.
VARIANT_SHAPES = [(2, 5, 9, 7, 70, 3, 1, 1, 1, "leaky"), (1, 6, 8, 8, 36, 3, 2, 1, 2, "linear"),
                  (3, 40, 5, 5, 40, 1, 1, 0, 1, "relu")]


@pytest.mark.parametrize("precision", sorted(CONV_TOLERANCE))
@pytest.mark.parametrize("variant", sorted(tiling.CONV_VARIANTS))
def test_conv_variant_matches_numpy_and_the_default_bit_for_bit(variant, precision):
    """Every conv.cu variant computes each output with the same sums in the same k order, so
    its results are the default variant's to the bit, and within tolerance of NumPy's."""
    from tdn.backends.cuda import kernels

    rng = np.random.default_rng(7)
    for batch, channels, height, width, filters, size, stride, padding, groups, activation in VARIANT_SHAPES:
        layer = Convolutional(filters, size, stride, padding, groups, False, activation)
        in_shape = (channels, height, width)
        out_shape = layer.output_shape(in_shape)
        x = rng.standard_normal((batch, *in_shape)).astype(np.float32)
        weights = rng.standard_normal((filters, channels // groups, size, size)).astype(np.float32) / 4
        bias = rng.standard_normal(filters).astype(np.float32)
        results = {}
        for name in {variant, tiling.DEFAULT_VARIANT.name}:
            geo = tiling.ConvGeometry.of(layer, in_shape, out_shape, batch, tiling.CONV_VARIANTS[name])
            storage = layout.STORAGE[precision]
            y = _empty((batch, *out_shape), storage)
            packed = device().upload(geo.pack_weights(weights), storage)
            kernels.conv(_activations(x, storage), packed, _device(bias), y, geo, precision)
            results[name] = _host(y)
        expected = convolve(_stored(x, storage), layer, weights, bias, *out_shape[1:])
        tol = CONV_TOLERANCE[precision]
        np.testing.assert_allclose(results[variant], expected, rtol=tol, atol=tol)
        np.testing.assert_array_equal(results[variant], results[tiling.DEFAULT_VARIANT.name])


@examples
@given(size=st.integers(1, 4), stride=st.integers(1, 3), padding=st.integers(0, 4),
       shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(4, 17), st.integers(4, 17)),
       storage=st.sampled_from(STORAGES), seed=st.integers(0, 2**31))
def test_maxpool_matches_numpy(size, stride, padding, shape, storage, seed):
    from tdn.backends.cuda import kernels

    layer = Maxpool(size, stride, padding)
    _, oh, ow = layer.output_shape(shape[1:])
    x = _stored(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), storage)
    y = _empty((*shape[:2], oh, ow), storage)
    kernels.maxpool(_activations(x, storage), y, size, stride, layer.offset)
    # An empty window's -FLT_MAX is -inf in float16.
    np.testing.assert_array_equal(_host(y), _stored(maxpool(x, layer, oh, ow), storage))


@examples
@given(batch=st.integers(1, 4), groups=st.sampled_from([1, 2, 4]), per_group=st.integers(1, 300),
       plane=st.tuples(st.integers(1, 20), st.integers(1, 20)), fused=st.booleans(),
       temperature=st.floats(0.25, 4.0), seed=st.integers(0, 2**31))
def test_avgpool_softmax_matches_numpy(batch, groups, per_group, plane, fused, temperature, seed):
    from tdn.backends.cuda import kernels

    c = groups * per_group
    x = np.random.default_rng(seed).standard_normal((batch, c, *plane)).astype(np.float32) * 4
    pooled = _empty((batch, c, 1, 1))
    probs = _empty((batch, c, 1, 1))
    kernels.avgpool_softmax(_activations(x), pooled, probs if fused else None, groups, temperature)
    expected_pooled = avgpool(x)
    np.testing.assert_allclose(_host(pooled), expected_pooled, rtol=1e-5, atol=1e-6)
    if fused:
        expected = softmax(expected_pooled, Softmax(groups, temperature))
        np.testing.assert_allclose(_host(probs), expected, rtol=1e-4, atol=1e-7)


@examples
@given(batch=st.integers(1, 3), groups=st.sampled_from([1, 3]), shape=st.tuples(
       st.integers(1, 30), st.integers(1, 6), st.integers(1, 6)), seed=st.integers(0, 2**31))
def test_softmax_matches_numpy(batch, groups, shape, seed):
    from tdn.backends.cuda import kernels

    total = int(np.prod(shape)) * groups
    x = np.random.default_rng(seed).standard_normal((batch, shape[0] * groups, *shape[1:])).astype(np.float32)
    y = _empty((batch, total, 1, 1))
    kernels.softmax(_activations(x), y, groups, 1.0)
    np.testing.assert_allclose(_host(y), softmax(x, Softmax(groups, 1.0)), rtol=1e-4, atol=1e-7)


@examples
@given(batch=st.integers(1, 20), inputs=st.integers(1, 600), outputs=st.integers(1, 40),
       image=st.booleans(), activation=st.sampled_from(ACTIVATIONS), storage=st.sampled_from(STORAGES),
       seed=st.integers(0, 2**31))
def test_connected_matches_formula(batch, inputs, outputs, image, activation, storage, seed):
    """Batches across several image tiles, inputs across the 256-value staging chunks; in float16
    storage, the formula of the stored inputs and weights, its result rounded to float16."""
    from tdn.backends.cuda import kernels

    rng = np.random.default_rng(seed)
    x = _stored(rng.standard_normal((batch, inputs, 1, 1) if image else (batch, inputs)).astype(np.float32),
                storage)
    weights = _stored((rng.standard_normal((outputs, inputs)) / np.sqrt(inputs)).astype(np.float32), storage)
    bias = rng.standard_normal(outputs).astype(np.float32)
    y = device().empty((batch, outputs), storage)
    kernels.connected(device().upload(x, storage), device().upload(weights, storage), _device(bias), y, activation)
    expected = _stored(formulas.connected(x, weights, bias, activation), storage)
    tol = 1e-4 if storage == np.float32 else 2e-3
    np.testing.assert_allclose(device().download(y).astype(np.float32), expected, rtol=tol, atol=10 * tol)


# The benchmark's batches on a GPU; on the CPU one image and one past a whole image tile.
@pytest.mark.parametrize("batch", [1, 9] if CUDA_INTERPRETED else [1, 8, 64, 256])
def test_connected_at_the_benchmark_batches(batch):
    from tdn.backends.cuda import kernels

    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 64, 4, 4)).astype(np.float32)
    weights = (rng.standard_normal((1000, 1024)) / 32).astype(np.float32)
    bias = rng.standard_normal(1000).astype(np.float32)
    y = _empty((batch, 1000, 1, 1))
    # The NHWC input reads flat in HWC order: the weights permuted as the program uploads them.
    kernels.connected(_activations(x), _device(weights_in_hwc_order(weights, x.shape[1:])), _device(bias), y,
                      "leaky")
    np.testing.assert_allclose(_host(y).reshape(batch, -1), formulas.connected(x, weights, bias, "leaky"),
                               rtol=1e-4, atol=1e-5)


@examples
@given(batch=st.integers(1, 3), channels=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       size=st.integers(1, 9), factor=st.integers(1, 3), from_larger=st.booleans(),
       alpha=st.sampled_from([1.0, 0.5]), beta=st.sampled_from([1.0, -1.5]),
       activation=st.sampled_from(ACTIVATIONS), storage=st.sampled_from(STORAGES), seed=st.integers(0, 2**31))
def test_shortcut_matches_formula(batch, channels, size, factor, from_larger, alpha, beta, activation, storage,
                                  seed):
    from tdn.backends.cuda import kernels

    rng = np.random.default_rng(seed)
    small, large = (size, size), (size * factor, size * factor)
    x_hw, from_hw = (small, large) if from_larger else (large, small)
    x = _stored(rng.standard_normal((batch, channels[0], *x_hw)).astype(np.float32), storage)
    source = _stored(rng.standard_normal((batch, channels[1], *from_hw)).astype(np.float32), storage)
    y = _empty(x.shape, storage)
    kernels.shortcut(_activations(x, storage), _activations(source, storage), y, alpha, beta, activation)
    expected = _stored(formulas.shortcut(x, source, alpha, beta, activation), storage)
    np.testing.assert_allclose(_host(y), expected, rtol=1e-5 if storage == np.float32 else 1e-3, atol=1e-6)


@examples
@given(batch=st.integers(1, 3), channels=st.lists(st.integers(1, 5), min_size=1, max_size=4),
       groups=st.integers(1, 3), plane=st.tuples(st.integers(1, 9), st.integers(1, 9)),
       storage=st.sampled_from(STORAGES), data=st.data())
def test_route_matches_formula(batch, channels, groups, plane, storage, data):
    from tdn.backends.cuda import kernels

    group_id = data.draw(st.integers(0, groups - 1))
    rng = np.random.default_rng(0)
    inputs = [_stored(rng.standard_normal((batch, c * groups, *plane)).astype(np.float32), storage)
              for c in channels]
    y = _empty((batch, sum(channels), *plane), storage)
    stream = device().stream()
    with stream:  # the copies go to the current stream
        kernels.route([_activations(a, storage) for a in inputs], y, groups, group_id)
        stream.synchronize()
    np.testing.assert_array_equal(_host(y), formulas.route(inputs, groups, group_id))


@examples
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 12), st.integers(1, 12)),
       stride=st.integers(1, 4), scale=st.sampled_from([1.0, 0.5, -2.0]), storage=st.sampled_from(STORAGES),
       seed=st.integers(0, 2**31))
def test_upsample_matches_formula(shape, stride, scale, storage, seed):
    from tdn.backends.cuda import kernels

    n, c, h, w = shape
    x = _stored(np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(np.float32), storage)
    y = _empty((n, c, h * stride, w * stride), storage)
    kernels.upsample(_activations(x, storage), y, stride, scale)
    np.testing.assert_array_equal(_host(y), _stored(formulas.upsample(x, stride, scale), storage))


@examples
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 40), st.integers(1, 9), st.integers(1, 9)),
       storage=st.sampled_from(STORAGES), seed=st.integers(0, 2**31))
def test_batchnorm_matches_formula(shape, storage, seed):
    from tdn.backends.cuda import kernels

    rng = np.random.default_rng(seed)
    x = _stored(rng.standard_normal(shape).astype(np.float32), storage)
    scale, shift = (rng.standard_normal(shape[1]).astype(np.float32) for _ in range(2))
    y = _empty(shape, storage)
    kernels.batchnorm(_activations(x, storage), _device(scale), _device(shift), y)
    np.testing.assert_array_equal(_host(y), _stored(formulas.batchnorm(x, scale, shift), storage))


@examples
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 20), st.integers(1, 20)),
       data=st.data(), noadjust=st.booleans(), storage=st.sampled_from(STORAGES), seed=st.integers(0, 2**31))
def test_crop_matches_formula(shape, data, noadjust, storage, seed):
    from tdn.backends.cuda import kernels

    out_h, out_w = data.draw(st.integers(1, shape[2])), data.draw(st.integers(1, shape[3]))
    x = _stored(np.random.default_rng(seed).random(shape).astype(np.float32), storage)
    y = _empty((*shape[:2], out_h, out_w), storage)
    layer = Crop(crop_height=out_h, crop_width=out_w, noadjust=noadjust)
    kernels.crop(_activations(x, storage), y, layer.scale, layer.shift)
    np.testing.assert_array_equal(_host(y), _stored(formulas.crop(x, out_h, out_w, noadjust), storage))


CASES = [("tiny", mode, "tiny-random.weights") for mode in ("letterbox", "resize_min", "stretch")] + \
        [("real", mode, "tiny.weights") for mode in ("letterbox", "resize_min", "stretch")]


def test_tolerances_cover_every_precision():
    from tdn.backends.cuda.backend import CudaBackend

    assert set(TOLERANCE) == set(CONV_TOLERANCE) == set(CudaBackend.precisions)


@pytest.mark.usefixtures("one_schedule")
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


@pytest.mark.usefixtures("one_schedule")
def test_batch_replay_gives_every_image_the_same_answer(shared):
    x = np.load(shared / "reference" / "real" / "real_dog_letterbox_input.npy")
    net = load(REPO / "cfg/tiny.cfg", shared / "weights/tiny.weights", "cuda")
    probs = net.predict(x)
    batch = net.predict(np.stack([x, x]))
    np.testing.assert_allclose(batch, np.stack([probs] * 2), rtol=1e-6, atol=1e-9)


@pytest.mark.usefixtures("one_schedule")
@pytest.mark.parametrize("mode", ["letterbox", "resize_min"])
def test_reference_layers(shared, mode):
    x = np.load(shared / "reference" / f"tiny_dog_{mode}_input.npy")
    net = load(REPO / "cfg/tiny.cfg", shared / "weights/tiny-random.weights", "cuda")
    for index, out in enumerate(net.predict_layers(x)):
        kind = net.graph.nodes[index].kind
        ref = np.load(shared / "reference" / f"tiny_dog_{mode}_layer{index:02d}_{kind}.npy")
        np.testing.assert_allclose(out.reshape(ref.shape), ref, rtol=1e-4, atol=1e-4,
                                   err_msg=f"layer {index} {kind}")


def _classify(shared, *options, image: str = "dog.jpg", style: str = "darknet-master") -> list[str]:
    """The prediction lines ("17.03%: malamute"), without a timing line. In interpret
    mode each launch runs under one schedule (TDN_CUDA_INTERPRET=1, not check)."""
    env = dict(os.environ)
    if env.get("TDN_CUDA_INTERPRET") == "check":
        env["TDN_CUDA_INTERPRET"] = "1"
    lines = subprocess.run(
        [sys.executable, "-c", "import sys; from tdn.cli import main; sys.exit(main())",
         "classify", *options, "--format", style,
         "--names", str(shared / "data/imagenet.shortnames.list"), str(REPO / "cfg/tiny.cfg"),
         str(shared / "weights/tiny.weights"), str(shared / "images" / image)],
        capture_output=True, text=True, check=True, env=env).stdout.splitlines()
    if style == "darknet":  # darknet-master prints the timing on stderr
        assert "Predicted in" in lines[0]
        return lines[1:]
    return lines


def test_classify_cli_prints_the_pages_lines(shared):
    """The Tiny Darknet page's five classes for dog-stb.png, in order, within the fp32 tolerance."""
    page = PAGE.splitlines()
    ours = _classify(shared, "--backend", "cuda", image="dog-stb.png", style="darknet")
    assert [line.split(": ")[0] for line in ours] == [line.split(": ")[0] for line in page]
    for mine, theirs in zip(ours, page, strict=True):
        assert abs(float(mine.split(": ")[1]) - float(theirs.split(": ")[1])) <= tolerance("fp32"), (mine, theirs)


def test_classify_cli_matches_numpy(shared):
    cuda = _classify(shared, "--backend", "cuda")
    assert cuda[0].endswith(": malamute") and cuda == _classify(shared, "--backend", "numpy")


@pytest.mark.parametrize("precision", ["tf32", "fp16"])
def test_classify_cli_tensor_core_precisions_keep_the_top_class(shared, precision):
    top = _classify(shared, "--backend", "cuda", "--precision", precision)[0]
    assert top.split(": ", 1)[1] == "malamute"


# Interpreted, the zoo at its small input (test_zoo.SMALL), one cfg per mix of layers: there
# darknet19_448 is darknet19, and darknet53's layers are the ResNets' convolutions and shortcuts (its
# linear shortcut activation: test_shortcut_matches_formula). On a GPU, every cfg at its own size.
ZOO = [name for name in DISTINCT if name != "darknet53"] if CUDA_INTERPRETED else list(CFGS)


@pytest.mark.usefixtures("one_schedule")
@pytest.mark.parametrize("name", ZOO)
def test_zoo_networks_match_numpy_layer_by_layer(shared, name):
    """Every layer kind of the zoo (connected, shortcut, route, crop...) through the whole CUDA
    plan, against the numpy backend on the same random weights."""
    text = small_cfg_text(shared, name) if CUDA_INTERPRETED else (shared / "cfg" / f"{name}.cfg").read_text()
    graph = graph_from_text(text, f"{name}.cfg")
    params = random_params(graph)
    x = np.random.default_rng(0).random((2, *graph.input_shape), np.float32)
    ours = Network(graph, params, registry().get("cuda")).predict_layers(x)
    theirs = Network(graph, params, registry().get("numpy")).predict_layers(x)
    for node, mine, expected in zip(graph.nodes, ours, theirs):
        scale = float(np.abs(expected).max()) or 1.0
        assert np.abs(mine - expected).max() <= 1e-4 * scale, f"{name} layer {node.index} [{node.kind}]"


# Every layer kind the plan has a kernel for, each fed what exercises its NHWC indexing: a crop,
# a standalone batchnorm, a shortcut between different shapes (Darknet's sampling), a route of
# channel groups, an upsample, a softmax in groups over a multi-pixel map (Darknet's CHW order),
# a connected layer after a map with H, W > 1 (its weights permuted at upload), a fused
# avgpool+softmax.
EVERY_KIND = """
[net]
width=12
height=12
channels=3
[crop]
crop_width=10
crop_height=10
[convolutional]
filters=12
size=3
pad=1
batch_normalize=1
activation=leaky
[batchnorm]
[maxpool]
size=2
stride=2
[convolutional]
filters=6
size=3
pad=1
activation=linear
[shortcut]
from=-3
activation=leaky
[route]
layers=-1,-3
groups=2
group_id=1
[upsample]
stride=2
[convolutional]
filters=8
size=1
stride=2
activation=relu
[softmax]
groups=4
[route]
layers=-2
[connected]
output=20
activation=leaky
[route]
layers=-4
[avgpool]
[softmax]
groups=2
"""
# Max |cuda - numpy| over each layer, relative to the layer's largest |value|, per precision: the
# fp16 network stores every activation in float16 (a relative rounding of 2^-11 per layer).
LAYER_TOLERANCE = {"fp32": 1e-5, "tf32": 1e-2, "fp16": 1e-2}


@pytest.mark.usefixtures("one_schedule")
@pytest.mark.parametrize("precision", sorted(LAYER_TOLERANCE))
def test_every_layer_kind_matches_numpy_layer_by_layer(precision):
    graph = graph_from_text(EVERY_KIND, "every-kind.cfg")
    assert {node.kind for node in graph.nodes} >= {"crop", "batchnorm", "shortcut", "route", "upsample",
                                                   "softmax", "connected", "avgpool", "maxpool"}
    assert graph.nodes[5].in_shape != graph.nodes[2].out_shape  # the shortcut samples between shapes
    params = random_params(graph)
    x = np.random.default_rng(0).random((2, *graph.input_shape), np.float32)
    ours = Network(graph, params, registry().get("cuda"), precision=precision).predict_layers(x)
    theirs = Network(graph, params, registry().get("numpy")).predict_layers(x)
    for node, mine, expected in zip(graph.nodes, ours, theirs, strict=True):
        assert mine.shape == expected.shape and mine.dtype == np.float32, f"layer {node.index} [{node.kind}]"
        scale = float(np.abs(expected).max()) or 1.0
        error = float(np.abs(mine - expected).max())
        assert error <= LAYER_TOLERANCE[precision] * scale, f"layer {node.index} [{node.kind}]: {error / scale}"


@pytest.mark.usefixtures("one_schedule")
def test_program_buffers_are_nhwc_of_the_precisions_storage_type():
    graph = graph_from_text(EVERY_KIND, "every-kind.cfg")
    params = random_params(graph)
    nbytes = {}
    for precision, storage in layout.STORAGE.items():
        program = Network(graph, params, registry().get("cuda"), precision=precision).program(2, 12, 12)
        assert [b.dtype for b in program.buffers] == [np.dtype(storage)] * len(program.buffers)
        assert [tuple(b.shape) for b in program.buffers] == list(program.plan.buffer_shapes)
        nbytes[precision] = [b.nbytes for b in program.buffers]
        # Weights are stored as the activations (fp16 operands in fp16); scales and biases float32.
        for index, (weights, vector) in program.weights.items():
            kind = graph.nodes[index].kind
            assert weights.dtype == (np.float32 if kind == "batchnorm" else storage), kind
            assert vector.dtype == np.float32, kind
        assert nbytes[precision] == list(program.plan.buffer_bytes)
    assert nbytes["tf32"] == nbytes["fp32"]
    assert [2 * n for n in nbytes["fp16"]] == nbytes["fp32"]


@pytest.mark.usefixtures("one_schedule")
@pytest.mark.parametrize("precision", sorted(LAYER_TOLERANCE))
def test_pixels_give_the_float_inputs_output_bit_for_bit(precision):
    """run_pixels (uint8 up, normalised on the device) against run on to_float's input, with
    every byte value among the pixels."""
    from tdn.image import pixels_to_input

    graph = graph_from_text(EVERY_KIND, "every-kind.cfg")
    net = Network(graph, random_params(graph), registry().get("cuda"), precision=precision)
    pixels = np.random.default_rng(1).permutation(np.arange(2 * 12 * 12 * 3) % 256).astype(np.uint8)
    pixels = pixels.reshape(2, 12, 12, 3)
    program = net.program(2, 12, 12)
    np.testing.assert_array_equal(program.run_pixels(pixels), program.run(pixels_to_input(pixels)))
    # The pixel graph replays with new bytes (its host buffer is copied in on each run).
    np.testing.assert_array_equal(program.run_pixels(pixels[::-1].copy()),
                                  program.run(pixels_to_input(pixels[::-1].copy())))
    np.testing.assert_array_equal(net.predict_pixels(pixels[0]), net.predict(pixels_to_input(pixels[:1])[0]))


@pytest.mark.usefixtures("one_schedule")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_a_map_output_comes_back_nchw(precision):
    """run converts a multi-cell NHWC output to float32 NCHW on the device (a classifier's output,
    one cell per image, is copied as it is in fp32)."""
    graph = graph_from_text("[net]\nwidth=6\nheight=5\nchannels=3\n[convolutional]\nfilters=4\nsize=3\npad=1\n"
                            "activation=linear\n", "map.cfg")
    params = random_params(graph)
    x = np.random.default_rng(2).random((2, *graph.input_shape), np.float32)
    ours = Network(graph, params, registry().get("cuda"), precision=precision).predict(x)
    theirs = Network(graph, params, registry().get("numpy")).predict(x)
    assert ours.shape == theirs.shape == (2, 4 * 5 * 6)
    np.testing.assert_allclose(ours, theirs, rtol=LAYER_TOLERANCE[precision], atol=LAYER_TOLERANCE[precision])


def test_float16_storage_round_trips_every_half_exactly():
    """Every float16 bit pattern (subnormals, infinities, NaNs included), as float32, through the
    device's fp16 buffers and back (convert.cu: float_to_half, then half_to_float) comes back as
    NumPy converts it, bit for bit (a NaN as a NaN: the conversion's is the canonical one); and
    float32 values between halves round to nearest even."""
    from tdn.backends.cuda import kernels

    halves = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    x = halves.astype(np.float32).reshape(2, 8, 64, 64)
    stored, back = device().empty((2, 64, 64, 8), np.float16), device().empty(x.shape)
    kernels.to_nhwc(_device(x), stored)
    kernels.to_nchw(stored, back)
    result = device().download(back)
    nan = np.isnan(x)
    assert np.isnan(result[nan]).all() and nan.sum() == 2 * (2**10 - 1)
    np.testing.assert_array_equal(result[~nan].view(np.uint32), x[~nan].view(np.uint32))
    # Midpoints between neighbouring positive finite halves: ties go to the even neighbour.
    finite = halves[np.isfinite(halves) & (halves > 0)].astype(np.float64)
    between = ((finite[:-1] + finite[1:]) / 2).astype(np.float32)
    between = np.resize(between, 2 * 8 * 64 * 64).reshape(x.shape)
    kernels.to_nhwc(_device(between), stored)
    kernels.to_nchw(stored, back)
    np.testing.assert_array_equal(device().download(back), between.astype(np.float16).astype(np.float32))
