"""The CUDA backend's host-side logic, on the CPU: weight packing, tiling, the plan, the
launch wrappers' argument checks, and how the backend reports itself unavailable."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, replace
from importlib import resources
from itertools import product
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tdn.backends.cuda import kernels, layout, tiling
from tdn.backends.cuda.arguments import (
    AvgpoolArgs,
    ConnectedArgs,
    CropArgs,
    MaxpoolArgs,
    RouteArgs,
    ShortcutArgs,
    SoftmaxArgs,
    UpsampleArgs,
)
from tdn.backends.cuda.backend import CudaBackend, cuda_unavailable_reason
from tdn.backends.cuda.plan import FUSED_OPS, PIPELINED_OP, STEP_OPS, build_plan
from tdn.backends.numpy.convolution import im2col

from tdn.activations import ACTIVATIONS
from tdn.graph import graph_from_text, load_graph
from tdn.layers.base import Layer
from tdn.layers.connected import weights_in_hwc_order
from tdn.layers.convolutional import Convolutional
from tdn.layers.crop import Crop
from tdn.layers.shortcut import Shortcut
from tdn.plugins import registry
from tests import cuda_formulas as formulas

REPO = Path(__file__).resolve().parent.parent
CONV_CU = resources.files("tdn.kernels").joinpath("conv.cu").read_text()


def test_activation_ids_match_tdn_activations():
    header = resources.files("tdn.kernels").joinpath("activations.cuh").read_text()
    ids = {name.lower(): int(i) for name, i in re.findall(r"ACT_(\w+) = (\d+),", header)}
    assert ids == {name: i for i, name in enumerate(ACTIVATIONS)}


def test_tile_sizes_reach_the_sources_as_definitions_only():
    """One home for each tile size: Python, passed with -D; no .cu file defines its own."""
    for file in kernels.KERNELS:
        source = kernels.kernel_source(file)
        for variant in kernels.VARIANTS.get(file, ("",)):
            for name, value in kernels.defines(file, variant).items():
                assert not re.search(rf"#define {name}\b", source), f"{file} defines {name} itself"
                assert name in source, f"{file} never uses {name}"
                assert f"-D{name}={value}" in kernels.compile_options(file, variant)
    assert kernels.defines("conv.cu") == tiling.DEFAULT_VARIANT.defines()


def test_conv_variants_are_one_table_each_compiled_with_its_own_definitions():
    assert kernels.VARIANTS["conv.cu"] == tuple(tiling.CONV_VARIANTS)
    options = {kernels.compile_options("conv.cu", name) for name in tiling.CONV_VARIANTS}
    assert len(options) == len(tiling.CONV_VARIANTS)
    for name, variant in tiling.CONV_VARIANTS.items():
        assert variant.name == name and variant.purpose
        assert variant.threads == 32 * variant.warps_m * variant.warps_n <= 1024
        # conv.cu's static_asserts, here so that a bad table entry fails without a compiler.
        assert variant.tile_k % 16 == 0
        assert variant.tile_k * variant.tile_m % variant.threads == 0
        assert variant.tile_k * variant.tile_n % variant.threads == 0
        shared_bytes = 4 * variant.tile_k * (variant.tile_m + variant.tile_n + 8)
        assert shared_bytes <= 48 * 1024, f"{name} needs {shared_bytes} bytes of static shared memory"
    with pytest.raises(ValueError, match="unknown variant 'm1n1'"):
        kernels.compile_options("conv.cu", "m1n1")
    with pytest.raises(ValueError, match="maxpool.cu has no variants"):
        kernels.compile_options("maxpool.cu", "m64n64k16")


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
    assert geo.grid == (-(-3 * 56 * 56 // 64), 3, 1)
    for variant in tiling.CONV_VARIANTS.values():
        grid = replace(geo, variant=variant).grid
        assert grid[0] * variant.tile_n >= geo.pixels > (grid[0] - 1) * variant.tile_n
        assert grid[1] * variant.tile_m >= geo.m_group > (grid[1] - 1) * variant.tile_m


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
    assert packed.shape == (groups, geo.k_pad, geo.m_pad) and geo.k_pad % geo.variant.tile_k == 0
    assert not packed[:, geo.k_group:].any() and not packed[:, :, geo.m_group:].any()
    columns = im2col(x, layer, geo.out_h, geo.out_w)  # (n, g, K, P), K in (c, ky, kx) order
    # conv.cu's k runs over (ky, kx, c), the channel fastest, as it gathers from NHWC.
    columns = columns.reshape(2, groups, channels_per_group, size, size, -1).transpose(0, 1, 3, 4, 2, 5)
    columns = columns.reshape(2, groups, geo.k_group, -1)
    out = np.einsum("gkm,ngkp->ngmp", packed[:, :geo.k_group, :geo.m_group], columns)
    # The convolution from its definition: each output cell, the window under it times the filter.
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride][:, :, :geo.out_h, :geo.out_w]  # (n, c, oy, ox, ky, kx)
    windows = windows.reshape(2, groups, channels_per_group, geo.out_h, geo.out_w, size, size)
    expected = np.einsum("gfcij,ngcyxij->ngfyx", weights.reshape(groups, filters_per_group, channels_per_group,
                                                                 size, size), windows)
    np.testing.assert_allclose(out.reshape(2, -1), expected.reshape(2, -1), rtol=1e-4, atol=1e-4)


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
    assert plan.buffer_shapes == ((4, 16, 16, 3), (4, 16, 16, 8), (4, 8, 8, 8), (4, 8, 8, 10),
                                  (4, 1, 1, 10), (4, 1, 1, 10))
    # dropout and cost hold their input's buffer; avgpool and softmax their own.
    assert plan.layer_buffers == (1, 2, 2, 3, 4, 5, 5)
    fused = plan.steps[-1]
    assert (fused.inputs, fused.targets) == ((3,), (4, 5))
    assert plan.steps[2].args.k_group == 8 and plan.steps[2].args.activation == "linear"
    assert plan.steps[1].args == MaxpoolArgs(size=2, stride=2, offset=0)
    assert plan.steps[3].args == AvgpoolArgs(SoftmaxArgs(groups=2, temperature=1.0))
    assert plan.output_buffer == 5


@pytest.mark.parametrize("precision, itemsize", [("fp32", 4), ("tf32", 4), ("fp16", 2)])
def test_plan_buffers_are_nhwc_of_the_precisions_storage_type(precision, itemsize):
    """fp16 networks store activations in float16: every buffer half the bytes of fp32's."""
    plan = build_plan(graph_from_text(CFG), batch=4, precision=precision)
    assert plan.storage == np.dtype(layout.STORAGE[precision]) and plan.storage.itemsize == itemsize
    assert plan.buffer_bytes[:2] == (4 * 16 * 16 * 3 * itemsize, 4 * 16 * 16 * 8 * itemsize)
    assert sum(plan.buffer_bytes) == itemsize * sum(int(np.prod(shape)) for shape in plan.buffer_shapes)


def test_connected_weights_follow_the_nhwc_input():
    """Permuted at upload, the weights times the NHWC input flat are Darknet's weights times the
    CHW input flat."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    weights = rng.standard_normal((7, 60)).astype(np.float32)
    permuted = weights_in_hwc_order(weights, (3, 4, 5))
    np.testing.assert_allclose(layout.to_nhwc(x).reshape(2, -1) @ permuted.T, x.reshape(2, -1) @ weights.T,
                               rtol=1e-5, atol=1e-5)
    assert not np.array_equal(permuted, weights)
    inputs_first = weights_in_hwc_order(weights, (3, 4, 5), inputs_first=True)
    assert inputs_first.flags.c_contiguous and np.array_equal(inputs_first, permuted.T)
    with pytest.raises(ValueError, match=r"expected \(7, 61\)"):
        weights_in_hwc_order(weights, (61, 1, 1))


def test_plan_uses_plain_softmax_without_avgpool():
    graph = graph_from_text(CFG.replace("[avgpool]\n", ""))
    plan = build_plan(graph, batch=1)
    assert [step.op for step in plan.steps][-1] == "softmax"
    assert plan.buffer_shapes[-1] == (1, 1, 1, 640)


def test_plan_keeps_avgpool_alone_when_not_followed_by_softmax():
    graph = graph_from_text(CFG.replace("[softmax]\ngroups=2\n", ""))
    assert build_plan(graph, batch=1).steps[-1].op == "avgpool"
    assert build_plan(graph, batch=1).steps[-1].args == AvgpoolArgs(None)


def test_plan_builds_each_launchers_arguments_from_its_layer():
    text = """[net]
width=8
height=8
channels=4
[convolutional]
filters=4
size=3
pad=1
activation=leaky
[shortcut]
from=-1
alpha=0.5
beta=2
activation=relu
[route]
layers=-1,-2
groups=2
group_id=1
[upsample]
stride=2
scale=0.25
[crop]
crop_height=12
crop_width=12
[connected]
output=7
activation=logistic
[softmax]
temperature=2
"""
    plan = build_plan(graph_from_text(text), batch=2)
    assert [step.args for step in plan.steps[1:]] == [
        ShortcutArgs(alpha=0.5, beta=2.0, activation="relu"), RouteArgs(groups=2, group_id=1),
        UpsampleArgs(stride=2, scale=0.25), CropArgs(scale=2.0, shift=-1.0), ConnectedArgs("logistic"),
        SoftmaxArgs(groups=1, temperature=2.0)]
    # 4 filters of an 8x8 map: the rule picks the narrow tile (least padding, most blocks).
    assert plan.steps[0].args == tiling.ConvGeometry(2, 4, 8, 8, 4, 8, 8, 3, 1, 1, 1, "leaky",
                                                     tiling.CONV_VARIANTS["m32n16k16"])


def _geo():
    return tiling.ConvGeometry(2, 4, 8, 8, 6, 8, 8, 3, 1, 1, 1, "leaky")


def _conv_arrays(geo, storage=np.float32):
    """NHWC input and output and the packed weights of the precision's storage type; bias float32."""
    return (np.zeros((2, 8, 8, 4), storage), np.zeros((1, geo.k_pad, geo.m_pad), storage),
            np.zeros(6, np.float32), np.zeros((2, 8, 8, 6), storage))


@pytest.mark.parametrize("position, bad, message", [
    (0, np.zeros((2, 8, 8, 4), np.float64), "conv input: expected float32"),
    (0, np.zeros((2, 8, 8, 4), np.float16), "conv input: expected float32"),
    (0, np.zeros((2, 4, 8, 8), np.float32), r"conv input: expected shape \(2, 8, 8, 4\)"),
    (0, np.zeros((2, 8, 8, 8), np.float32)[..., ::2], "conv input: expected a C-contiguous"),
    (1, np.zeros((1, 27, 64), np.float32), r"conv weights: expected shape \(1, 48, 64\)"),
    (2, np.zeros(7, np.float32), r"conv bias: expected shape \(6,\)"),
    (3, np.zeros((2, 8, 8, 6), np.float16), "conv output: expected float32"),
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


@pytest.fixture
def launches(monkeypatch):
    """Records kernel launches (file, entry, grid, block, args) instead of making them."""
    calls = []

    class Recorder:
        def launch(self, file, entry, grid, block, args, variant=""):
            calls.append((file, entry, grid, block, args))

    monkeypatch.setattr(kernels, "device", Recorder)
    return calls


@pytest.mark.parametrize("precision, entry", [("fp32", "conv_f32"), ("tf32", "conv_tf32"), ("fp16", "conv_f16")])
def test_each_precision_launches_its_conv_entry(launches, precision, entry):
    geo = _geo()
    kernels.conv(*_conv_arrays(geo, layout.STORAGE[precision]), geo, precision)
    [(file, name, grid, block, args)] = launches
    assert (file, name, grid, block) == ("conv.cu", entry, geo.grid, (geo.variant.threads,))
    assert [int(v) for v in args[4:]] == list(geo.scalars())
    assert all(type(v) is np.int32 for v in args[4:])


def test_backend_precisions_are_the_conv_entries_fp32_first():
    assert CudaBackend.precisions == tuple(kernels.CONV_ENTRY) == ("fp32", "tf32", "fp16")


def test_pooling_and_softmax_wrappers_check_arguments():
    x = np.zeros((2, 4, 4, 10), np.float32)  # NHWC
    with pytest.raises(ValueError, match=r"maxpool output: expected shape \(2, 2, 2, 10\)"):
        kernels.maxpool(x, np.zeros((2, 2, 2, 9), np.float32), 2, 2, 0)
    with pytest.raises(ValueError, match="maxpool output: expected float32, got float16"):
        kernels.maxpool(x, np.zeros((2, 2, 2, 10), np.float16), 2, 2, 0)
    with pytest.raises(ValueError, match=r"avgpool output: expected \(N, H, W, C\)|avgpool output: expected shape"):
        kernels.avgpool_softmax(x, np.zeros((2, 10), np.float32), None)
    with pytest.raises(ValueError, match="3 groups do not divide 10"):
        kernels.avgpool_softmax(x, np.zeros((2, 1, 1, 10), np.float32),
                                np.zeros((2, 1, 1, 10), np.float32), groups=3)
    with pytest.raises(ValueError, match="temperature must be positive"):
        kernels.softmax(x, np.zeros((2, 1, 1, 160), np.float32), 1, 0.0)
    with pytest.raises(ValueError, match=r"softmax output: expected shape \(2, 1, 1, 160\)"):
        kernels.softmax(x, np.zeros((2, 160, 1, 1), np.float32), 1, 1.0)
    with pytest.raises(ValueError, match="softmax input: expected a C-contiguous"):
        kernels.softmax(np.zeros((2, 4, 8, 10), np.float32)[:, :, ::2],
                        np.zeros((2, 1, 1, 160), np.float32), 1, 1.0)
    with pytest.raises(ValueError, match="activations are stored as float32, float16, not float64"):
        kernels.maxpool(x.astype(np.float64), np.zeros((2, 2, 2, 10)), 2, 2, 0)


def test_kernel_sources_inline_their_headers_once():
    for name in kernels.KERNELS:
        source = kernels.kernel_source(name)
        assert "#include" not in source and "#pragma once" not in source
        for entry in kernels.KERNELS[name]:
            assert 'extern "C" __global__ void' in source and f"{entry}(" in source
    assert "__device__ __forceinline__ float activate" in kernels.kernel_source("conv.cu")
    # connected.cu includes reduce.cuh directly; avgpool_softmax.cu through softmax.cuh.
    for name in ("connected.cu", "avgpool_softmax.cu"):
        assert kernels.kernel_source(name).count("float warp_sum(") == 1


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


def test_a_step_reads_the_buffers_of_its_nodes_sources():
    graph = graph_from_text(CFG)
    # As a shortcut or route would: node 3 (the second conv) also reads layer 0's output.
    nodes = tuple(replace(node, sources=(0,)) if node.index == 3 else node for node in graph.nodes)
    plan = build_plan(replace(graph, nodes=nodes), batch=2)
    assert plan.steps[2].inputs == (plan.layer_buffers[2], plan.layer_buffers[0]) == (2, 1)
    assert plan.steps[0].inputs == (0,)


@dataclass(frozen=True)
class _Lrn(Layer):
    kind = "lrn"


def test_plan_names_a_kind_without_a_kernel():
    graph = graph_from_text(CFG)
    nodes = tuple(replace(node, layer=_Lrn()) if node.index == 1 else node for node in graph.nodes)
    with pytest.raises(ValueError, match="no kernel for layer kind lrn"):
        build_plan(replace(graph, nodes=nodes), batch=1)


def test_activation_ids_and_unknown_names():
    assert kernels.activation_id("linear") == 0 and kernels.activation_id("loggy") == 13
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        kernels.activation_id("swish")


def test_elementwise_grid_covers_the_work_with_at_most_65535_blocks():
    assert kernels.elementwise_grid(0) == 1
    assert kernels.elementwise_grid(256) == 1 and kernels.elementwise_grid(257) == 2
    assert kernels.elementwise_grid(10**12) == 65535


# connected

@pytest.mark.parametrize("batch, outputs, grid", [(1, 1000, (1, 125)), (8, 1001, (1, 126)),
                                                  (9, 10, (2, 2)), (256, 4096, (32, 512))])
def test_connected_grid_tiles_images_and_outputs(batch, outputs, grid):
    assert kernels.connected_grid(batch, outputs) == grid


def test_connected_grid_refuses_more_outputs_than_grid_rows():
    assert kernels.connected_grid(1, 65535 * 8)[1] == 65535
    with pytest.raises(ValueError, match="exceed the kernel's limit of 524280"):
        kernels.connected_grid(1, 65535 * 8 + 1)


def _connected_arrays():
    return (np.zeros((3, 4, 2, 2), np.float32), np.zeros((10, 16), np.float32), np.zeros(10, np.float32),
            np.zeros((3, 10, 1, 1), np.float32))


def test_connected_launch_reads_images_flat(launches):
    kernels.connected(*_connected_arrays(), "leaky")
    [(file, entry, grid, block, args)] = launches
    assert (file, entry, grid, block) == ("connected.cu", "connected_f32", (1, 2), (256,))
    assert [int(v) for v in args[4:]] == [3, 16, 10, ACTIVATIONS.index("leaky")]
    kernels.connected(np.zeros((3, 16), np.float32), *_connected_arrays()[1:3], np.zeros((3, 10), np.float32),
                      "linear")
    assert len(launches) == 2


@pytest.mark.parametrize("position, bad, message", [
    (0, np.zeros((3, 4, 2, 3), np.float32),
     r"connected input: expected 3 images of 16 values, got shape \(3, 4, 2, 3\)"),
    (0, np.zeros((3, 32), np.float32)[:, ::2], "connected input: expected a C-contiguous"),
    (1, np.zeros(160, np.float32), r"connected weights: expected \(outputs, inputs\)"),
    (1, np.zeros((10, 16), np.float64), "connected weights: expected float32"),
    (2, np.zeros(11, np.float32), r"connected bias: expected shape \(10,\)"),
    (3, np.zeros((2, 10), np.float32), r"connected output: expected 3 images of 10 values"),
    (3, np.zeros((3, 10, 2, 1), np.float32), r"connected output: expected 3 images of 10 values"),
])
def test_connected_wrapper_checks_arguments(launches, position, bad, message):
    arrays = list(_connected_arrays())
    arrays[position] = bad
    with pytest.raises(ValueError, match=message):
        kernels.connected(*arrays, "linear")
    assert launches == []


def test_connected_formula_is_darknets_gemm():
    """forward_connected_layer: gemm(0, 1, batch, outputs, inputs, 1, input, weights) + bias, activate."""
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((3, 4, 2, 2)), rng.standard_normal((5, 16)), rng.standard_normal(5)
    flat = x.reshape(3, 16)
    loops = np.array([[sum(flat[i, k] * w[j, k] for k in range(16)) + b[j] for j in range(5)] for i in range(3)])
    np.testing.assert_allclose(formulas.connected(x, w, b, "leaky"), np.where(loops > 0, loops, 0.1 * loops),
                               rtol=1e-5, atol=1e-6)


# shortcut

@pytest.mark.parametrize("out_shape, from_shape, expected", [
    ((8, 6, 6), (8, 6, 6), (1, 1, 8, 6, 6)),
    ((8, 6, 6), (4, 12, 12), (2, 1, 4, 6, 6)),  # from is larger: read every 2nd cell
    ((4, 12, 12), (8, 6, 6), (1, 2, 4, 6, 6)),  # from is smaller: write every 2nd cell
    ((3, 7, 7), (5, 3, 3), (1, 2, 3, 3, 3)),    # 7 // 3 = 2, as Darknet's integer division gives
])
def test_shortcut_geometry(out_shape, from_shape, expected):
    """The layer's overlap, which the kernel's launch wrapper passes on."""
    min_c, min_h, min_w, stride, sample = Shortcut.overlap(out_shape, from_shape)
    assert (stride, sample, min_c, min_h, min_w) == expected


def test_shortcut_geometry_refuses_different_factors_in_height_and_width():
    with pytest.raises(ValueError, match="the width and height ratios differ"):
        kernels.shortcut(*(np.zeros(shape, np.float32) for shape in ((1, 6, 12, 8), (1, 12, 12, 8), (1, 6, 12, 8))))


def _darknet_shortcut(x, source, alpha, beta):
    """shortcut_cpu of pjreddie's blas.c, as loops over flat arrays (before the activation)."""
    batch, c2, h2, w2 = x.shape
    _, c1, h1, w1 = source.shape
    stride, sample = max(w1 // w2, 1), max(w2 // w1, 1)
    out, add = x.copy().ravel(), source.ravel()
    for b in range(batch):
        for k in range(min(c1, c2)):
            for j in range(min(h1, h2)):
                for i in range(min(w1, w2)):
                    out_index = i * sample + w2 * (j * sample + h2 * (k + c2 * b))
                    add_index = i * stride + w1 * (j * stride + h1 * (k + c1 * b))
                    out[out_index] = alpha * out[out_index] + beta * add[add_index]
    return out.reshape(x.shape)


@given(shapes=st.sampled_from([((2, 3, 4, 4), (2, 3, 4, 4)), ((2, 3, 4, 4), (2, 5, 8, 8)),
                               ((1, 4, 8, 8), (1, 2, 4, 4)), ((1, 3, 7, 7), (1, 2, 3, 3)),
                               ((1, 2, 3, 3), (1, 3, 7, 7))]),
       alpha=st.sampled_from([1.0, 0.5]), beta=st.sampled_from([1.0, -2.0]), seed=st.integers(0, 2**31))
def test_shortcut_formula_matches_darknets_loops(shapes, alpha, beta, seed):
    rng = np.random.default_rng(seed)
    x, source = (rng.standard_normal(shape).astype(np.float32) for shape in shapes)
    expected = _darknet_shortcut(x, source, np.float32(alpha), np.float32(beta))
    np.testing.assert_array_equal(formulas.shortcut(x, source, alpha, beta, "linear"), expected)


def test_shortcut_launch_and_checks(launches):
    x, source, y = (np.zeros((2, 12, 12, 4), np.float32), np.zeros((2, 6, 6, 8), np.float32),
                    np.zeros((2, 12, 12, 4), np.float32))
    kernels.shortcut(x, source, y, 0.5, 2.0, "relu")
    [(file, entry, grid, block, args)] = launches
    assert (file, entry, grid, block) == ("shortcut.cu", "shortcut_f32", (5,), (256,))
    assert [int(v) for v in args[3:15]] == [2, 4, 12, 12, 8, 6, 6, 1, 2, 4, 6, 6]
    assert (args[15], args[16], int(args[17])) == (np.float32(0.5), np.float32(2.0), ACTIVATIONS.index("relu"))
    with pytest.raises(ValueError, match=r"shortcut from: expected \(N, H, W, C\), got shape \(2, 8, 6\)"):
        kernels.shortcut(x, np.zeros((2, 8, 6), np.float32), y)
    with pytest.raises(ValueError, match=r"shortcut from: expected shape \(2, 6, 6, 8\)"):
        kernels.shortcut(x, np.zeros((3, 6, 6, 8), np.float32), y)
    with pytest.raises(ValueError, match="shortcut from: expected float32, got float16"):
        kernels.shortcut(x, source.astype(np.float16), y)
    with pytest.raises(ValueError, match=r"shortcut output: expected shape \(2, 12, 12, 4\)"):
        kernels.shortcut(x, source, np.zeros((2, 6, 6, 8), np.float32))
    assert len(launches) == 1


# route

def _apply_copies(inputs, out_shape, copies):
    """What the cudaMemcpy2D calls do, on the arrays' bytes."""
    out = np.full(out_shape, np.nan, np.float32)
    dst = out.reshape(-1).view(np.uint8)
    for array, copy in zip(inputs, copies, strict=True):
        src = array.reshape(-1).view(np.uint8)
        for row in range(copy.rows):
            s, d = copy.src_offset + row * copy.src_pitch, copy.dst_offset + row * copy.dst_pitch
            dst[d:d + copy.width] = src[s:s + copy.width]
    return out


@given(channels=st.lists(st.integers(1, 4), min_size=1, max_size=4), groups=st.integers(1, 3),
       data=st.data(), batch=st.integers(1, 3))
def test_route_copies_concatenate_channel_slices(channels, groups, data, batch):
    group_id = data.draw(st.integers(0, groups - 1))
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((batch, c * groups, 3, 2)).astype(np.float32) for c in channels]
    stored = [layout.to_nhwc(a) for a in inputs]
    out_shape = (batch, 3, 2, sum(channels))
    out = _apply_copies(stored, out_shape, kernels.route_copies([a.shape for a in stored], out_shape,
                                                                groups, group_id))
    np.testing.assert_array_equal(layout.to_nchw(out), formulas.route(inputs, groups, group_id))


def _darknet_route(inputs, groups, group_id):
    """forward_route_layer (with AlexeyAB's groups): per input and image, one flat copy."""
    batch = inputs[0].shape[0]
    sizes = [a[0].size for a in inputs]
    outputs = sum(sizes) // groups
    out, offset = np.zeros(batch * outputs, np.float32), 0
    for array, size in zip(inputs, sizes, strict=True):
        part = size // groups
        flat = array.ravel()
        for j in range(batch):
            out[offset + j * outputs:offset + j * outputs + part] = flat[j * size + part * group_id:][:part]
        offset += part
    return out


def test_route_formula_matches_darknets_copies():
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal((2, c, 3, 3)).astype(np.float32) for c in (4, 2, 6)]
    for groups, group_id in [(1, 0), (2, 0), (2, 1)]:
        np.testing.assert_array_equal(formulas.route(inputs, groups, group_id).ravel(),
                                      _darknet_route(inputs, groups, group_id))


@pytest.mark.parametrize("shapes, out_shape, groups, group_id, message", [
    ([(1, 3, 3, 4), (1, 3, 4, 2)], (1, 3, 3, 6), 1, 0, r"input 1 has shape \(1, 3, 4, 2\)"),
    ([(1, 3, 3, 4), (1, 3, 3, 3)], (1, 3, 3, 3), 2, 0, "2 groups do not divide input 1's 3 channels"),
    ([(1, 3, 3, 4)], (1, 3, 3, 4), 2, 2, "group_id 2 is not in 0..1"),
    ([(1, 3, 3, 4)], (1, 3, 3, 3), 1, 0, "the inputs give 4 channels, the output has 3"),
])
def test_route_copies_refuse_mismatches(shapes, out_shape, groups, group_id, message):
    with pytest.raises(ValueError, match=message):
        kernels.route_copies(shapes, out_shape, groups, group_id)


def test_route_checks_its_arrays_before_copying():
    with pytest.raises(ValueError, match="route input 1: expected float32"):
        kernels.route([np.zeros((1, 2, 3, 3), np.float32), np.zeros((1, 2, 3, 3))], np.zeros((1, 4, 3, 3), np.float32))
    with pytest.raises(ValueError, match="route output: expected a C-contiguous"):
        kernels.route([np.zeros((1, 2, 3, 3), np.float32)], np.zeros((1, 4, 3, 3), np.float32)[:, ::2])


# upsample

def _darknet_upsample(x, stride, scale):
    """upsample_cpu of blas.c, forward (repeat)."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, h * stride, w * stride), np.float32)
    for b, k, j, i in product(range(n), range(c), range(h * stride), range(w * stride)):
        out[b, k, j, i] = np.float32(scale) * x[b, k, j // stride, i // stride]
    return out


@pytest.mark.parametrize("shape, stride, scale", [((2, 3, 2, 3), 2, 1.0), ((1, 2, 3, 2), 3, 0.5)])
def test_upsample_formula_matches_darknets_loops(shape, stride, scale):
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(formulas.upsample(x, stride, scale), _darknet_upsample(x, stride, scale),
                               rtol=1e-6, atol=1e-6)


def test_upsample_launch_and_checks(launches):
    x = np.zeros((2, 5, 4, 3), np.float32)
    kernels.upsample(x, np.zeros((2, 10, 8, 3), np.float32), 2, 0.5)
    kernels.upsample(x, np.zeros((2, 15, 12, 3), np.float32), 3)
    assert [[int(v) for v in call[4][2:7]] for call in launches] == [[2, 3, 5, 4, 2], [2, 3, 5, 4, 3]]
    assert [call[4][7] for call in launches] == [np.float32(0.5), np.float32(1.0)]
    with pytest.raises(ValueError, match=r"upsample output: expected shape \(2, 15, 12, 3\)"):
        kernels.upsample(x, np.zeros((2, 10, 8, 3), np.float32), 3)
    with pytest.raises(ValueError, match="stride must be positive"):
        kernels.upsample(x, np.zeros((2, 5, 4, 3), np.float32), 0)


# batchnorm and crop

def test_batchnorm_launch_and_checks(launches):
    x, y = np.zeros((2, 4, 5, 3), np.float32), np.zeros((2, 4, 5, 3), np.float32)
    kernels.batchnorm(x, np.ones(3, np.float32), np.zeros(3, np.float32), y)
    [(file, entry, grid, block, args)] = launches
    assert (file, entry, [int(v) for v in args[4:]]) == ("batchnorm.cu", "batchnorm_f32", [40, 3])
    with pytest.raises(ValueError, match=r"batchnorm scale: expected shape \(3,\)"):
        kernels.batchnorm(x, np.ones(4, np.float32), np.zeros(3, np.float32), y)
    with pytest.raises(ValueError, match="batchnorm shift: expected float32"):
        kernels.batchnorm(x, np.ones(3, np.float32), np.zeros(3), y)


def _darknet_crop(x, out_h, out_w, noadjust):
    """forward_crop_layer with train = 0: centred offsets, no flip, input * scale + trans."""
    n, c, h, w = x.shape
    scale, trans = (np.float32(1), np.float32(0)) if noadjust else (np.float32(2), np.float32(-1))
    dh, dw = (h - out_h) // 2, (w - out_w) // 2
    flat, out = x.ravel(), []
    for b, k, i, j in product(range(n), range(c), range(out_h), range(out_w)):
        out.append(flat[(j + dw) + w * ((i + dh) + h * (k + c * b))] * scale + trans)
    return np.array(out, np.float32).reshape(n, c, out_h, out_w)


@pytest.mark.parametrize("noadjust", [False, True])
def test_crop_formula_matches_darknets_loops(noadjust):
    x = np.random.default_rng(4).random((2, 3, 7, 6)).astype(np.float32)
    np.testing.assert_array_equal(formulas.crop(x, 4, 3, noadjust), _darknet_crop(x, 4, 3, noadjust))


def test_crop_launch_and_checks(launches):
    x = np.zeros((2, 7, 6, 3), np.float32)
    for noadjust in (False, True):
        layer = Crop(crop_height=4, crop_width=3, noadjust=noadjust)
        kernels.crop(x, np.zeros((2, 4, 3, 3), np.float32), layer.scale, layer.shift)
    assert [[int(v) for v in call[4][2:8]] for call in launches] == [[2, 3, 7, 6, 4, 3]] * 2
    assert [tuple(call[4][8:]) for call in launches] == [(2.0, -1.0), (1.0, 0.0)]
    with pytest.raises(ValueError, match="a 8x3 window does not fit in a 7x6 input"):
        kernels.crop(x, np.zeros((2, 8, 3, 3), np.float32), 2.0, -1.0)
    with pytest.raises(ValueError, match=r"crop output: expected shape \(2, 4, 3, 3\)"):
        kernels.crop(x, np.zeros((2, 4, 3, 4), np.float32), 2.0, -1.0)


def test_every_step_op_has_a_launcher():
    """A kind wired into plan.STEP_OPS (or a fused or pipelined op) without a launcher would
    otherwise fail only when a network using it runs."""
    from tdn.backends.cuda.program import LAUNCHERS

    assert set(LAUNCHERS) == set(STEP_OPS.values()) | set(FUSED_OPS.values()) | {PIPELINED_OP}


@pytest.mark.parametrize("name", ["darknet", "darknet53", "resnet18", "resnet50", "alexnet", "vgg-16"])
def test_every_zoo_network_plans_with_each_layer_reading_the_right_buffers(shared, name):
    """The plan of each zoo cfg has a launcher for every step and wires each node's sources
    (route, shortcut) to the buffers holding those layers' outputs."""
    graph = load_graph(shared / "cfg" / f"{name}.cfg")
    plan = build_plan(graph, batch=2)
    assert CudaBackend.layer_kinds >= {node.kind for node in graph.nodes}
    for step in plan.steps:
        node = step.nodes[0]
        previous = plan.layer_buffers[node.index - 1] if node.index else 0
        assert step.inputs == (previous, *(plan.layer_buffers[s] for s in node.sources))
        for target, computed in zip(step.targets, step.nodes):
            assert plan.buffer_shapes[target] == layout.nhwc(2, computed.out_shape)
    assert plan.buffer_shapes[plan.output_buffer] == layout.nhwc(2, graph.output_shape)
