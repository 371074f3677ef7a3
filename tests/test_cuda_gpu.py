"""On a GPU: every CUDA kernel against the NumPy backend, and the Darknet reference
through the cuda backends. Skipped, with the reason, where CuPy or a GPU is missing."""

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
from tdn.layers.convolutional import Convolutional
from tdn.layers.maxpool import Maxpool
from tdn.layers.softmax import Softmax
from tdn.network import load

REASON = cuda_unavailable_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=f"no GPU: {REASON}")]
REPO = Path(__file__).resolve().parent.parent
# Final-probability tolerances per backend (README "CUDA backend").
TOLERANCE = {"cuda": (1e-4, 1e-6), "cuda-tf32": (3e-2, 1e-4), "cuda-fp16": (3e-2, 1e-4)}
CONV_TOLERANCE = {"float32": 1e-4, "tf32": 1e-2, "fp16": 1e-2}


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


CASES = [("tiny", mode, "tiny-random.weights") for mode in ("letterbox", "resize_min", "stretch")] + \
        [("real", mode, "tiny.weights") for mode in ("letterbox", "resize_min", "stretch")]


@pytest.mark.parametrize("backend", sorted(TOLERANCE))
@pytest.mark.parametrize("prefix, mode, weights", CASES)
def test_reference_outputs(shared, backend, prefix, mode, weights):
    folder = shared / "reference" / ("real" if prefix == "real" else "")
    x = np.load(folder / f"{prefix}_dog_{mode}_input.npy")
    expected = np.load(folder / f"{prefix}_dog_{mode}_output.npy")
    net = load(REPO / "cfg/tiny.cfg", shared / "weights" / weights, backend)
    rtol, atol = TOLERANCE[backend]
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


def test_classify_cli_matches_numpy(shared):
    def classify(backend):
        return subprocess.run(
            [sys.executable, "-c", "import sys; from tdn.cli import main; sys.exit(main())",
             "classify", "--backend", backend, "--format", "darknet-master", str(REPO / "cfg/tiny.cfg"),
             str(shared / "weights/tiny.weights"), str(shared / "images/dog.jpg")],
            capture_output=True, text=True, check=True).stdout

    cuda = classify("cuda")
    assert "malamute" in cuda and cuda == classify("numpy")
