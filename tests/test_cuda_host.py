"""The CUDA backend's host-side logic, on the CPU: weight packing, tiling, the plan, the
launch wrappers' argument checks, and how the backend reports itself unavailable."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tdn.backends.cuda import kernels, tiling
from tdn.backends.cuda.backend import CudaBackend, cuda_unavailable_reason
from tdn.backends.cuda.plan import build_plan
from tdn.backends.numpy.convolution import im2col

from tdn.activations import ACTIVATIONS
from tdn.graph import graph_from_text
from tdn.layers.convolutional import Convolutional
from tdn.plugins import registry

REPO = Path(__file__).resolve().parent.parent
CONV_CU = resources.files("tdn.kernels").joinpath("conv.cu").read_text()


def test_activation_ids_match_tdn_activations():
    header = resources.files("tdn.kernels").joinpath("activations.cuh").read_text()
    ids = {name.lower(): int(i) for name, i in re.findall(r"ACT_(\w+) = (\d+),", header)}
    assert ids == {name: i for i, name in enumerate(ACTIVATIONS)}


def test_tile_constants_match_conv_cu():
    for name in ("TILE_M", "TILE_N", "TILE_K", "THREADS"):
        assert re.search(rf"#define {name} (\d+)", CONV_CU).group(1) == str(getattr(tiling, name))


def test_scalars_follow_conv_params_order():
    params = re.search(r"#define CONV_PARAMS (.*?)\n\n", CONV_CU, re.S).group(1)
    names = re.findall(r"int (\w+)", params)
    geo = tiling.ConvGeometry(2, 6, 9, 7, 8, 5, 4, 3, 2, 1, 2, "elu")
    values = dict(zip(names, geo.scalars(), strict=True))
    assert values == {"channels": 6, "height": 9, "width": 7, "filters": 8, "out_h": 5, "out_w": 4,
                      "size": 3, "stride": 2, "padding": 1, "groups": 2, "k_group": 27,
                      "m_group": 4, "k_pad": 32, "m_pad": 64, "pixels": 40,
                      "activation": ACTIVATIONS.index("elu")}


def test_grid_covers_every_output_once():
    geo = tiling.ConvGeometry(3, 16, 56, 56, 130, 56, 56, 1, 1, 0, 1, "leaky")
    grid = geo.grid
    assert grid == (-(-3 * 56 * 56 // 64), 3, 1)
    assert grid[0] * tiling.TILE_N >= geo.pixels > (grid[0] - 1) * tiling.TILE_N
    assert grid[1] * tiling.TILE_M >= geo.m_group > (grid[1] - 1) * tiling.TILE_M


@given(channels_per_group=st.integers(1, 5), filters_per_group=st.integers(1, 70),
       groups=st.integers(1, 3), size=st.integers(1, 3), stride=st.integers(1, 2),
       padding=st.integers(0, 2), height=st.integers(3, 8), seed=st.integers(0, 2**31))
def test_packed_weights_times_im2col_is_the_convolution(channels_per_group, filters_per_group, groups,
                                                       size, stride, padding, height, seed):
    """The GEMM conv.cu computes, done in NumPy on the packed weights, equals the convolution."""
    rng = np.random.default_rng(seed)
    c, m = channels_per_group * groups, filters_per_group * groups
    layer = Convolutional(m, size, stride, padding, groups, False, "linear")
    out_shape = layer.output_shape((c, height, height + 1))
    geo = tiling.ConvGeometry.of(layer, (c, height, height + 1), out_shape, 2)
    weights = rng.standard_normal((m, channels_per_group, size, size)).astype(np.float32)
    x = rng.standard_normal((2, c, height, height + 1)).astype(np.float32)
    packed = geo.pack_weights(weights)
    assert packed.shape == (groups, geo.k_pad, geo.m_pad) and geo.k_pad % tiling.TILE_K == 0
    assert not packed[:, geo.k_group:].any() and not packed[:, :, geo.m_group:].any()
    columns = im2col(x, layer, geo.out_h, geo.out_w)  # (n, g, K, P), K in (c, ky, kx) order
    out = np.einsum("gkm,ngkp->ngmp", packed[:, :geo.k_group, :geo.m_group], columns)
    expected = np.stack([
        sum(np.einsum("oij,nij->no", weights[f:f + 1, ci],
                      np.pad(x[:, f // filters_per_group * channels_per_group + ci],
                             ((0, 0), (padding, padding), (padding, padding)))
                      [:, oy * stride:oy * stride + size, ox * stride:ox * stride + size])[:, 0]
            for ci in range(channels_per_group))
        for f in range(m) for oy in range(geo.out_h) for ox in range(geo.out_w)], axis=1)
    np.testing.assert_allclose(out.reshape(2, -1), expected, rtol=1e-4, atol=1e-4)


def test_pack_weights_rejects_a_wrong_shape():
    geo = tiling.ConvGeometry(1, 4, 8, 8, 6, 8, 8, 3, 1, 1, 2, "leaky")
    with pytest.raises(ValueError, match=r"expected \(6, 2, 3, 3\)"):
        geo.pack_weights(np.zeros((6, 4, 3, 3), np.float32))


CFG = """
[net]
height=16
width=16
channels=3
[convolutional]
filters=8
size=3
stride=1
pad=1
batch_normalize=1
activation=leaky
[maxpool]
size=2
stride=2
[dropout]
[convolutional]
filters=10
size=1
activation=linear
[avgpool]
[softmax]
groups=2
[cost]
"""


def test_plan_fuses_avgpool_with_softmax_and_aliases_identity_layers():
    graph = graph_from_text(CFG)
    plan = build_plan(graph, batch=4)
    assert [step.op for step in plan.steps] == ["conv", "maxpool", "conv", "avgpool_softmax"]
    assert plan.buffer_shapes == ((4, 3, 16, 16), (4, 8, 16, 16), (4, 8, 8, 8), (4, 10, 8, 8),
                                  (4, 10, 1, 1), (4, 10, 1, 1))
    # dropout and cost hold their input's buffer; avgpool and softmax their own.
    assert plan.layer_buffers == (1, 2, 2, 3, 4, 5, 5)
    fused = plan.steps[-1]
    assert (fused.source, fused.targets) == (3, (4, 5))
    assert plan.steps[2].conv.k_group == 8 and plan.steps[2].conv.activation == "linear"
    assert plan.output_buffer == 5


def test_plan_uses_plain_softmax_without_avgpool():
    graph = graph_from_text(CFG.replace("[avgpool]\n", ""))
    plan = build_plan(graph, batch=1)
    assert [step.op for step in plan.steps][-1] == "softmax"
    assert plan.buffer_shapes[-1] == (1, 640, 1, 1)


def test_plan_keeps_avgpool_alone_when_not_followed_by_softmax():
    graph = graph_from_text(CFG.replace("[softmax]\ngroups=2\n", ""))
    assert build_plan(graph, batch=1).steps[-1].op == "avgpool"


def _geo():
    return tiling.ConvGeometry(2, 4, 8, 8, 6, 8, 8, 3, 1, 1, 1, "leaky")


def _conv_arrays(geo):
    return (np.zeros((2, 4, 8, 8), np.float32), np.zeros((1, geo.k_pad, geo.m_pad), np.float32),
            np.zeros(6, np.float32), np.zeros((2, 6, 8, 8), np.float32))


@pytest.mark.parametrize("position, bad, message", [
    (0, np.zeros((2, 4, 8, 8), np.float64), "conv input: expected float32"),
    (0, np.zeros((2, 4, 8, 9), np.float32), r"conv input: expected shape \(2, 4, 8, 8\)"),
    (0, np.zeros((2, 4, 8, 16), np.float32)[..., ::2], "conv input: expected a C-contiguous"),
    (1, np.zeros((1, 27, 64), np.float32), r"conv weights: expected shape \(1, 48, 64\)"),
    (2, np.zeros(7, np.float32), r"conv bias: expected shape \(6,\)"),
    (3, np.zeros((2, 6, 8, 8), np.float16), "conv output: expected float32"),
])
def test_conv_wrapper_checks_arguments_before_launching(position, bad, message):
    geo = _geo()
    arrays = list(_conv_arrays(geo))
    arrays[position] = bad
    with pytest.raises(ValueError, match=message):
        kernels.conv(*arrays, geo)


def test_conv_wrapper_rejects_an_unknown_precision():
    geo = _geo()
    with pytest.raises(ValueError, match="unknown precision 'bf16'"):
        kernels.conv(*_conv_arrays(geo), geo, precision="bf16")


def test_pooling_and_softmax_wrappers_check_arguments():
    x = np.zeros((2, 10, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"maxpool output: expected shape \(2, 10, 2, 2\)"):
        kernels.maxpool(x, np.zeros((2, 9, 2, 2), np.float32), 2, 2, 0)
    with pytest.raises(ValueError, match=r"avgpool output: expected shape \(2, 10, 1, 1\)"):
        kernels.avgpool_softmax(x, np.zeros((2, 10), np.float32), None)
    with pytest.raises(ValueError, match="3 groups do not divide 10"):
        kernels.avgpool_softmax(x, np.zeros((2, 10, 1, 1), np.float32),
                                np.zeros((2, 10, 1, 1), np.float32), groups=3)
    with pytest.raises(ValueError, match="temperature must be positive"):
        kernels.softmax(x, np.zeros((2, 160, 1, 1), np.float32), 1, 0.0)
    with pytest.raises(ValueError, match="softmax input: expected a C-contiguous"):
        kernels.softmax(np.zeros((2, 10, 4, 8), np.float32)[..., ::2],
                        np.zeros((2, 160, 1, 1), np.float32), 1, 1.0)


def test_kernel_sources_inline_their_headers():
    for name in kernels.KERNELS:
        source = kernels.kernel_source(name)
        assert "#include" not in source
        for entry in kernels.KERNELS[name]:
            assert 'extern "C" __global__ void' in source and f"{entry}(" in source
    assert "__device__ __forceinline__ float activate" in kernels.kernel_source("conv.cu")


def test_cuda_backend_is_registered_above_numpy_with_three_precisions():
    backends = registry()
    assert "cuda" in backends.names()
    assert backends.instance("cuda").priority > backends.instance("numpy").priority
    assert backends.instance("cuda").precisions == ("fp32", "tf32", "fp16")


def _has_cupy() -> bool:
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(_has_cupy(), reason="checks the message given when CuPy is missing")
def test_without_cupy_the_backend_says_how_to_install_it():
    assert cuda_unavailable_reason() == "CuPy is not installed (pip install 'tdn[cuda]')"
    assert CudaBackend().unavailable_reason() == cuda_unavailable_reason()
    assert "cupy" not in sys.modules  # nothing imported it on the way


def test_cli_fails_with_one_line_when_cuda_is_unavailable(shared):
    reason = cuda_unavailable_reason()
    if reason is None:
        pytest.skip("a GPU is available here; this checks the unavailable path")
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from tdn.cli import main; sys.exit(main())",
         "classify", "--backend", "cuda", str(REPO / "cfg/tiny.cfg"),
         str(shared / "weights/tiny-random.weights"), str(shared / "images/dog.jpg")],
        capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 1
    assert result.stderr == f"tdn: error: backend 'cuda' is not available: {reason}\n"
    assert result.stdout == ""
