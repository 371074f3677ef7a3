"""The pipelined fp16 tensor-core convolution (kernels/conv_pipelined.cu, backends/cuda/pipelined.py):
its host side on the CPU, and every variant against a NumPy reference on the GPU where there is one,
else interpreted (every launch under every schedule, as tests/test_cuda_gpu.py's kernel tests)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tdn.backends.cuda import kernels, pipelined, tiling
from tdn.backends.cuda.device import device

from tdn.activations import ACTIVATIONS
from tdn.layers.convolutional import Convolutional
from tests.conftest import CUDA_INTERPRETED, CUDA_REASON, REPO

ON_DEVICE = (pytest.mark.gpu, pytest.mark.usefixtures("cuda_device"),
             pytest.mark.skipif(CUDA_REASON is not None, reason=f"no GPU, no interpreter: {CUDA_REASON}"))
examples = settings(max_examples=25) if CUDA_INTERPRETED else settings(max_examples=100)
# Output rounded to fp16 (2^-11 relative) after float32 sums of exact fp16 products: within
# 1e-3 relative, plus 1e-3 absolute for the float32 rounding of sums whose terms cancel.
RTOL = ATOL = 1e-3
# Stair is a staircase: a last-bit difference of a sum near an integer moves it by a step.
SMOOTH_ACTIVATIONS = [a for a in ACTIVATIONS if a != "stair"]


def on_device(test):
    for mark in ON_DEVICE:
        test = mark(test)
    return test


def reference(x: np.ndarray, weights: np.ndarray, bias: np.ndarray, layer: Convolutional) -> np.ndarray:
    """The convolution of NHWC x with Darknet-layout weights in float64, from the fp16-rounded x
    and weights, activation applied: (N, OH, OW, M)."""
    from tdn.backends.numpy.activations import activate

    n, h, w, c = x.shape
    groups, size, stride, pad = layer.groups, layer.size, layer.stride, layer.padding
    _, out_h, out_w = layer.output_shape((c, h, w))
    xs = np.pad(x.astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    ws = weights.astype(np.float16).astype(np.float64)
    cg, mg = c // groups, weights.shape[0] // groups
    y = np.zeros((n, out_h, out_w, weights.shape[0]))
    for g in range(groups):
        for ky in range(size):
            for kx in range(size):
                window = xs[:, ky:ky + stride * out_h:stride, kx:kx + stride * out_w:stride, g * cg:(g + 1) * cg]
                y[..., g * mg:(g + 1) * mg] += window @ ws[g * mg:(g + 1) * mg, :, ky, kx].T
    y += bias
    return activate(y.astype(np.float32), layer.activation).astype(np.float64)


def run(batch, channels, height, width, filters, size, stride, padding, groups, activation, variant, seed):
    """conv_pipelined on random data: (result, reference)."""
    rng = np.random.default_rng(seed)
    layer = Convolutional(filters, size, stride, padding, groups, False, activation)
    in_shape = (channels, height, width)
    conv = tiling.ConvGeometry.of(layer, in_shape, layer.output_shape(in_shape), batch)
    geo = pipelined.PipelinedGeometry(conv, pipelined.VARIANTS[variant])
    x = rng.standard_normal(geo.x_shape).astype(np.float16)
    weights = rng.standard_normal((filters, channels // groups, size, size)).astype(np.float32)
    weights /= np.float32(np.sqrt(channels // groups * size * size))
    bias = rng.standard_normal(filters).astype(np.float32)
    dev = device()
    y = dev.empty(geo.y_shape, np.float16)  # NaN until written
    kernels.conv_pipelined(dev.upload(x, np.float16), dev.upload(geo.pack_weights(weights), np.float16),
                           dev.upload(bias), y, geo)
    return dev.download(y), reference(x, weights, bias, layer)


def check(result: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert result.dtype == np.float16 and result.shape == expected.shape, what
    np.testing.assert_allclose(result.astype(np.float64), expected, rtol=RTOL, atol=ATOL, err_msg=what)


# (batch, channels, height, width, filters, size, stride, padding, groups, activation): partial
# pixel and filter tiles, several k slices (more than the stages), odd maps, stride 2, groups.
EDGE_SHAPES = [(2, 16, 7, 9, 70, 3, 1, 1, 1, "leaky"), (1, 72, 5, 5, 33, 1, 1, 0, 1, "linear"),
               (1, 32, 9, 8, 24, 3, 2, 1, 2, "relu"), (3, 8, 3, 3, 130, 3, 2, 0, 1, "logistic")]


@on_device
@pytest.mark.parametrize("variant", sorted(pipelined.VARIANTS))
def test_every_variant_matches_the_reference_on_edge_shapes(variant):
    for shape in EDGE_SHAPES:
        check(*run(*shape, variant, seed=11), f"{variant} on {shape}")


@on_device
@pytest.mark.parametrize("variant", sorted(pipelined.VARIANTS))
@examples
@given(group_channels=st.sampled_from([8, 16, 24, 40, 64, 72]), filters=st.integers(1, 80),
       groups=st.integers(1, 2), size=st.sampled_from([1, 3]), stride=st.integers(1, 2),
       padding=st.integers(0, 1), batch=st.integers(1, 2), height=st.integers(1, 11), width=st.integers(1, 11),
       activation=st.sampled_from(SMOOTH_ACTIVATIONS), seed=st.integers(0, 2**31))
def test_conv_pipelined_matches_the_reference(variant, group_channels, filters, groups, size, stride, padding,
                                              batch, height, width, activation, seed):
    if height + 2 * padding < size or width + 2 * padding < size:
        height, width = height + size, width + size
    shape = (batch, group_channels * groups, height, width, filters * groups, size, stride, padding, groups,
             activation)
    check(*run(*shape, variant, seed), f"{variant} on {shape}")


# ---- the host side, on the CPU ----------------------------------------------------------------------

def _geometry(channels=16, filters=20, size=3, groups=1, batch=2, variant=pipelined.DEFAULT_VARIANT):
    layer = Convolutional(filters, size, 1, 1, groups, False, "linear")
    conv = tiling.ConvGeometry.of(layer, (channels, 6, 5), layer.output_shape((channels, 6, 5)), batch)
    return pipelined.PipelinedGeometry(conv, variant)


def test_weights_are_packed_filter_major_with_k_in_ky_kx_c_order():
    geo = _geometry(channels=16, filters=6, groups=2)
    weights = np.random.default_rng(0).standard_normal((6, 8, 3, 3)).astype(np.float32)
    packed = geo.pack_weights(weights)
    assert packed.dtype == np.float16 and packed.shape == (2, geo.m_pad, geo.k_pad) == (2, 64, 96)
    for g, m, c, ky, kx in [(0, 0, 0, 0, 0), (1, 2, 7, 2, 1), (0, 1, 3, 1, 2)]:
        assert packed[g, m, (ky * 3 + kx) * 8 + c] == np.float16(weights[g * 3 + m, c, ky, kx])
    assert not packed[:, 3:].any() and not packed[:, :, 72:].any()  # zero padding to whole tiles


def test_variants_fit_static_shared_memory_and_name_their_purpose():
    for variant in pipelined.VARIANTS.values():
        assert variant.shared_bytes <= 48 * 1024 and variant.threads <= 1024
        assert "batch" in variant.purpose or "layers" in variant.purpose or "maps" in variant.purpose
    assert kernels.VARIANTS["conv_pipelined.cu"] == tuple(pipelined.VARIANTS)
    assert kernels.defines("conv_pipelined.cu", "p32f32k64s4") == {"WARPS_P": 1, "WARPS_F": 1, "TILE_K": 64,
                                                                    "STAGES": 4}


def test_channels_per_group_must_be_a_multiple_of_eight():
    with pytest.raises(ValueError, match="12 channels per group.*8 channels"):
        _geometry(channels=24, groups=2)
    conv = _geometry().conv
    assert pipelined.unsupported_reason(conv) is None
    first_layer = tiling.ConvGeometry(1, 3, 224, 224, 16, 224, 224, 3, 1, 1, 1, "leaky")
    assert "3 channels per group" in pipelined.unsupported_reason(first_layer)


def test_grid_covers_pixels_and_filters_in_tiles():
    geo = _geometry(channels=16, filters=70, batch=3, variant=pipelined.VARIANTS["p128f64k32s3"])
    assert geo.conv.pixels == 3 * 6 * 5 and geo.grid == (1, 2, 1) and geo.m_pad == 128 and geo.k_pad == 160


@pytest.mark.parametrize("batch, channels, size, map_size, filters, expected", [
    (1, 1024, 3, 7, 1024, "p32f32k64s4"),  # small map, many filters, batch 1: fill the SMs
    (256, 64, 3, 56, 64, "p128f64k32s3"),  # large compute-bound layer: the biggest tile that wastes nothing
    (1, 64, 3, 120, 256, "p64f128k32s3"),  # 14,400 pixels: whole 64-pixel tiles, not 128-pixel ones
])
def test_the_rule_chooses_by_useful_work_per_wave(batch, channels, size, map_size, filters, expected):
    layer = Convolutional(filters, size, 1, size // 2, 1, False, "leaky")
    in_shape = (channels, map_size, map_size)
    conv = tiling.ConvGeometry.of(layer, in_shape, layer.output_shape(in_shape), batch)
    assert pipelined.rule_choice(conv).name == expected


@pytest.mark.parametrize("argument, replacement, message", [
    (0, np.zeros((2, 6, 5, 16), np.float32), "conv input: expected float16, got float32"),
    (0, np.zeros((2, 16, 6, 5), np.float16), r"conv input: expected shape \(2, 6, 5, 16\)"),
    (1, np.zeros((1, 64, 160), np.float32), "conv weights: expected float16"),
    (2, np.zeros(20, np.float16), "conv bias: expected float32"),
    (3, np.zeros((2, 6, 5, 20), np.float16).transpose(0, 2, 1, 3), "conv output: expected shape"),
    (3, np.zeros((2, 6, 5, 40), np.float16)[..., ::2], "conv output: expected a C-contiguous array"),
], ids=["float32 input", "NCHW input", "float32 weights", "float16 bias", "transposed output", "strided output"])
def test_the_wrapper_checks_dtype_shape_and_contiguity(argument, replacement, message, monkeypatch):
    geo = _geometry()
    arrays = [np.zeros(geo.x_shape, np.float16), np.zeros(geo.packed_shape, np.float16), np.zeros(20, np.float32),
              np.zeros(geo.y_shape, np.float16)]
    monkeypatch.setattr(kernels, "device", lambda: pytest.fail("launched despite a wrong argument"))
    arrays[argument] = replacement
    with pytest.raises(ValueError, match=message):
        kernels.conv_pipelined(*arrays, geo)


@on_device
def test_the_gpu_check_script_runs_and_reports(tmp_path, monkeypatch):
    """benchmarks/pipelined_check.py, which no GPU has run yet: its checks, and its timing on one
    small layer (the interpreter's seconds say nothing about a GPU; the report's form does)."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("pipelined_check", REPO / "benchmarks/pipelined_check.py")
    pipelined_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pipelined_check)
    monkeypatch.setattr(pipelined_check, "TIMED_SHAPES", [("tiny", (1, 16, 6, 6, 24, 3, 1, 1, 1, "leaky"))])
    monkeypatch.setattr(pipelined_check, "REPEATS", 1)
    assert pipelined_check.main(["--out", str(tmp_path / "check.json")]) == 0
    report = json.loads((tmp_path / "check.json").read_text())
    assert len(report["checks"]) == len(pipelined_check.CHECK_SHAPES) * len(pipelined.VARIANTS)
    assert all(row["ok"] and row["relative_error"] < 1e-2 for row in report["checks"])
    (timing,) = report["timings"]
    assert set(timing["variants"]) == set(pipelined.VARIANTS) and timing["conv.cu fp16 us"] > 0
