"""The NumPy backends against buffers written by the original Darknet C code."""

import numpy as np
import pytest
from tdn.backends.numpy.backend import ExactNumpyProgram, NumpyProgram

import tdn
from tdn.classes import top_k

MODES = ("letterbox", "resize_min", "stretch")


@pytest.fixture(scope="module", params=["numpy", "numpy-exact"])
def random_net(request, shared):
    return tdn.load("cfg/tiny.cfg", shared / "weights" / "tiny-random.weights", request.param)


def layer_files(shared, mode):
    files = sorted((shared / "reference").glob(f"tiny_dog_{mode}_layer*_*.npy"))
    assert len(files) == 22
    return files


def layer_tolerance(backend: str, reference: np.ndarray) -> float:
    # numpy-exact repeats Darknet's float32 operation order: the buffers match to the bit
    # (the softmax to libm's exp). numpy sums in BLAS order and folds batch-norm: a few
    # ulps per layer, under 3e-6 of the layer's largest value (the README's bound).
    if backend == "numpy-exact":
        return 1e-5
    return 3e-6 * max(1.0, float(np.abs(reference).max()))


@pytest.mark.parametrize("mode", MODES)
def test_every_layer_from_its_given_input(random_net, shared, mode):
    x = np.load(shared / "reference" / f"tiny_dog_{mode}_input.npy")
    graph = random_net.graph.resized(*x.shape[1:])
    # The layer-by-layer program, fed Darknet's own input to each layer.
    program_class = ExactNumpyProgram if random_net.backend.name == "numpy-exact" else NumpyProgram
    program = program_class(graph, random_net.params)
    previous = x[None]
    for node, params, path in zip(graph.nodes, random_net.params, layer_files(shared, mode)):
        expected = np.load(path)
        ours = program.forward(node, params, previous).reshape(expected.shape)
        error = float(np.abs(ours - expected).max())
        assert error <= layer_tolerance(random_net.backend.name, expected), \
            f"{random_net.backend.name}: layer {node.index} ({path.name}) max abs error {error:.3g}"
        previous = expected.reshape((1,) + node.out_shape)


@pytest.mark.parametrize("mode", MODES)
def test_whole_network_every_layer_and_final_output(random_net, shared, mode):
    x = np.load(shared / "reference" / f"tiny_dog_{mode}_input.npy")
    outputs = random_net.predict_layers(x)
    if random_net.backend.name == "numpy-exact":
        for index, (ours, path) in enumerate(zip(outputs[:21], layer_files(shared, mode))):
            error = float(np.abs(ours.reshape(-1) - np.load(path).reshape(-1)).max())
            assert error <= 1e-5, f"numpy-exact: layer {index} ({path.name}) max abs error {error:.3g}"
    expected = np.load(shared / "reference" / f"tiny_dog_{mode}_output.npy")
    probabilities = random_net.predict(x)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-4, atol=1e-6)
    assert [i for i, _ in top_k(probabilities, 5)] == [i for i, _ in top_k(expected, 5)]


@pytest.mark.parametrize("backend", ["numpy", "numpy-exact"])
@pytest.mark.parametrize("mode", MODES)
def test_trained_weights_real_case(shared, backend, mode):
    net = tdn.load("cfg/tiny.cfg", shared / "weights" / "tiny.weights", backend)
    real = shared / "reference" / "real"
    probabilities = net.predict(np.load(real / f"real_dog_{mode}_input.npy"))
    expected = np.load(real / f"real_dog_{mode}_output.npy")
    np.testing.assert_allclose(probabilities, expected, rtol=1e-4, atol=1e-6)
    assert [i for i, _ in top_k(probabilities, 5)] == [i for i, _ in top_k(expected, 5)]


def test_batches_give_each_images_own_answer(shared):
    net = tdn.load("cfg/tiny.cfg", shared / "weights" / "tiny.weights", "numpy")
    inputs = [np.load(shared / "reference" / "real" / f"real_dog_{m}_input.npy") for m in ("letterbox", "stretch")]
    batch = net.predict(np.stack(inputs))
    assert batch.shape == (2, 1000) and batch.dtype == np.float32
    for row, x in zip(batch, inputs):
        single = net.predict(x)
        assert single.shape == (1000,)
        np.testing.assert_allclose(row, single, rtol=1e-5, atol=1e-7)
    assert not np.allclose(batch[0], batch[1])
    np.testing.assert_allclose(batch.sum(axis=1), 1.0, rtol=1e-5)
