"""Tuning tables (backends/cuda/tuning.py) and `tdn tune --backend cuda`: the table format, the
plan's reading of it, the rule without one, and the command end to end in interpret mode."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources

import numpy as np
import pytest
from tdn.backends.cuda import pipelined, tiling, tuning
from tdn.backends.cuda.device import INTERPRETER_NAME
from tdn.backends.cuda.plan import build_plan

from tdn.cli import main
from tdn.graph import graph_from_text
from tdn.plugins import registry
from tdn.weights import random_params
from tests.conftest import CUDA_REASON

CFG = """[net]
width=8
height=8
channels=3
[convolutional]
filters=20
size=3
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
filters=40
size=1
activation=linear
[avgpool]
[softmax]
"""


def _geo(batch, channels, size, filters, kernel=3, stride=1, padding=1, groups=1):
    out = (size + 2 * padding - kernel) // stride + 1
    return tiling.ConvGeometry(batch, channels, size, size, filters, out, out, kernel, stride, padding, groups,
                               "leaky")


@pytest.mark.parametrize("geo, expected", [
    (_geo(1, 512, 7, 1024), "m32n16k16"),  # 16 blocks of m64n64: the narrow tile fills the SMs
    (_geo(256, 128, 56, 128), "m128n64k32"),  # every variant fills the GPU: the largest tile
    (_geo(1, 3, 224, 16), "m32n16k16"),  # 16 filters: m64n64 would compute 4x padding
    (_geo(8, 256, 14, 256), "m64n32k16"),
])
def test_rule_picks_the_variant_that_fills_the_gpu_with_the_least_padding(geo, expected):
    assert tuning.rule_choice(geo).name == expected


def test_useful_fraction_counts_partial_tiles():
    geo = replace(_geo(1, 16, 7, 40), variant=tiling.CONV_VARIANTS["m64n64k16"])
    assert tuning.useful_fraction(geo) == pytest.approx(40 * 49 / (64 * 64))


def _table(gpu="NVIDIA H200", interpreted=False, variant="m128n64k32", precision="fp32"):
    graph = graph_from_text(CFG)
    shapes = {}
    for node in graph.nodes:
        if node.kind == "convolutional":
            geo = tiling.ConvGeometry.of(node.layer, node.in_shape, node.out_shape, 2)
            shapes[tuning.shape_key(geo, precision)] = {name: 9.0 for name in tiling.CONV_VARIANTS} | {variant: 1.0}
    return graph, tuning.Table(gpu, interpreted, "2026-12-02T00:00:00+00:00", shapes)


def test_table_round_trip_and_best(tmp_path):
    _, table = _table()
    path = tmp_path / "sub" / "t.json"
    tuning.write_table(table, path)
    assert list(path.parent.iterdir()) == [path]  # no temporary file left beside it
    data = json.loads(path.read_text())
    assert data["format"] == tuning.FORMAT and data["gpu"] == "NVIDIA H200" and data["interpreted"] is False
    assert {entry["best"] for entry in data["shapes"].values()} == {"m128n64k32"}
    assert tuning.read_table(path) == table


@pytest.mark.parametrize("text, message", [
    ("{", "line 1: not JSON"),
    ('{"format": 2}', "expected a tuning table of format 1"),
    ('{"format": 1, "gpu": "x", "shapes": {}}', "\"interpreted\" \\(true/false\\)"),
    ('{"format": 1, "gpu": "x", "interpreted": false, "shapes": {"k": {"microseconds": {"m9": 1}}}}',
     "shape 'k': expected positive microseconds for known variants"),
    ('{"format": 1, "gpu": "x", "interpreted": false, "shapes": {"k": {"microseconds": {"m64n64k16": 0}}}}',
     "shape 'k': expected positive"),
])
def test_a_bad_table_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(tuning.TuningError, match=message):
        tuning.read_table(path)


def test_plan_reads_the_table_of_its_gpu_and_the_rule_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setenv("TDN_TUNED_DIR", str(tmp_path))
    graph, table = _table(variant="m128n64k32")
    tuning.write_table(table, tmp_path / "h200.json")
    tuning.write_table(_table(gpu="NVIDIA H100", variant="m64n32k16")[1], tmp_path / "h100.json")

    def variants(gpu, precision="fp32"):
        plan = build_plan(graph, 2, tuning.chooser(tuning.best_variants(gpu), precision))
        return [step.args.variant.name for step in plan.steps if step.op == "conv"]

    assert variants("NVIDIA H200") == ["m128n64k32", "m128n64k32"]
    assert variants("NVIDIA H100") == ["m64n32k16", "m64n32k16"]
    rule = [tuning.rule_choice(step.args).name for step in build_plan(graph, 2).steps if step.op == "conv"]
    assert variants("NVIDIA A100") == rule == variants("NVIDIA H200", "fp16")
    assert rule != ["m128n64k32", "m128n64k32"]  # so the first assertion shows the table was read


def test_shipped_tables_are_gpu_measurements():
    folder = resources.files("tdn.backends.cuda").joinpath("tuned")
    names = [item.name for item in folder.iterdir()] if folder.is_dir() else []
    for table in tuning.shipped_tables():
        assert not table.interpreted and table.gpu != INTERPRETER_NAME
    assert len(tuning.shipped_tables()) == sum(name.endswith(".json") for name in names)


def test_table_filename():
    assert tuning.table_filename("NVIDIA H200") == "nvidia-h200.json"
    assert tuning.table_filename(INTERPRETER_NAME) == "tdn-cuda-interpreter-cpu.json"


def test_tune_without_cuda_is_one_line(tmp_path, monkeypatch, capsys):
    from tdn.backends.cuda import backend

    (tmp_path / "t.cfg").write_text(CFG)
    monkeypatch.setattr(backend, "cuda_unavailable_reason", lambda: "CuPy is not installed")
    assert main(["tune", "--backend", "cuda", str(tmp_path / "t.cfg")]) == 1
    assert capsys.readouterr().err == "tdn: error: cannot tune the cuda backend: CuPy is not installed\n"


def test_tune_rejects_unknown_precisions_and_backends(capsys):
    with pytest.raises(SystemExit):
        main(["tune", "--backend", "cuda", "x.cfg", "--precision", "fp32,bf16"])
    assert "unknown precision(s) bf16" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["tune", "--backend", "numpy", "x.cfg"])
    assert "invalid choice: 'numpy'" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(CUDA_REASON is not None, reason=f"no GPU, no interpreter: {CUDA_REASON}")
def test_tune_times_every_variant_and_the_backend_runs_what_it_chose(cuda_device, tmp_path, monkeypatch, capsys):
    """End to end on a two-convolution network: every variant of every shape timed, the table
    written (marked interpreted where it is), and the backend's plan runs the table's choices with
    the numpy backend's results."""
    monkeypatch.setenv("TDN_TUNED_DIR", str(tmp_path))
    (tmp_path / "t.cfg").write_text(CFG)
    assert main(["tune", "--backend", "cuda", str(tmp_path / "t.cfg"), "--batch", "2",
                 "--precision", "fp32,fp16", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    [path] = tmp_path.glob("*.json")
    table = tuning.read_table(path)
    assert path.name == tuning.table_filename(cuda_device.name())
    assert table.interpreted == cuda_device.interpreted
    assert len(table.shapes) == 4 and all(set(t) == set(tiling.CONV_VARIANTS) for t in table.shapes.values())
    assert "4 shapes, the rule's choice is the fastest on" in out
    graph = graph_from_text(CFG)
    params = random_params(graph)
    program = registry().get("cuda").prepare(graph, params, 2, "fp32")
    best = table.best()
    chosen = {tuning.shape_key(step.args, "fp32"): step.args.variant.name
              for step in program.plan.steps if step.op == "conv"}
    assert chosen == {key: best[key] for key in chosen} and len(chosen) == 2
    x = np.random.default_rng(0).random((2, *graph.input_shape), np.float32)
    expected = registry().get("numpy").prepare(graph, params, 2, "fp32").run(x)
    np.testing.assert_allclose(program.run(x), expected, rtol=1e-4, atol=1e-6)


PIPELINED_CFG = CFG.replace("filters=20", "filters=16")  # the second convolution: 16 channels, a multiple of 8


def _ops(precision, choose=None):
    plan = build_plan(graph_from_text(PIPELINED_CFG), 2, choose, precision)
    return [(step.op, step.args.variant.name) for step in plan.steps if "conv" in step.op]


def test_fp16_plans_the_pipelined_kernel_where_its_channel_rule_holds():
    """The 3-channel first layer stays on conv.cu; the 16-channel one runs conv_pipelined.cu in
    fp16 (the rule's variant), and in fp32 and tf32 never."""
    graph = graph_from_text(PIPELINED_CFG)
    second = tiling.ConvGeometry.of(graph.nodes[2].layer, graph.nodes[2].in_shape, graph.nodes[2].out_shape, 2)
    first_rule = [name for op, name in _ops("fp32")][0]
    assert _ops("fp16") == [("conv", first_rule), ("conv_pipelined", pipelined.rule_choice(second).name)]
    for precision in ("fp32", "tf32"):
        assert [op for op, _ in _ops(precision)] == ["conv", "conv"]


def test_a_table_chooses_between_the_two_kernels_in_fp16(tmp_path, monkeypatch):
    """One tuning run decides: a table whose fastest variant for the 16-channel shape is conv.cu's
    keeps conv.cu there; a pipelined variant named for a shape it cannot compute is ignored."""
    monkeypatch.setenv("TDN_TUNED_DIR", str(tmp_path))
    graph = graph_from_text(PIPELINED_CFG)
    keys = {}
    for node in graph.nodes:
        if node.kind == "convolutional":
            geo = tiling.ConvGeometry.of(node.layer, node.in_shape, node.out_shape, 2)
            keys[geo.channels] = tuning.shape_key(geo, "fp16")
    times = {keys[3]: {"p32f32k64s4": 1.0, "m64n64k16": 2.0},  # not computable: 3 channels
             keys[16]: {"m64n32k16": 1.0, "p64f64k32s4": 2.0}}
    tuning.write_table(tuning.Table("NVIDIA H200", False, "", times), tmp_path / "h200.json")
    choose = tuning.chooser(tuning.best_variants("NVIDIA H200"), "fp16")
    first_rule = tuning.conv_rule_choice(tiling.ConvGeometry.of(graph.nodes[0].layer, graph.nodes[0].in_shape,
                                                                 graph.nodes[0].out_shape, 2)).name
    assert _ops("fp16", choose) == [("conv", first_rule), ("conv", "m64n32k16")]
    times[keys[16]] = {"m64n32k16": 3.0, "p64f64k32s4": 2.0}
    tuning.write_table(tuning.Table("NVIDIA H200", False, "", times), tmp_path / "h200.json")
    choose = tuning.chooser(tuning.best_variants("NVIDIA H200"), "fp16")
    assert _ops("fp16", choose)[1] == ("conv_pipelined", "p64f64k32s4")


def test_a_pipelined_variant_outside_fp16_is_refused():
    with pytest.raises(ValueError, match="for fp16 only, not fp32"):
        build_plan(graph_from_text(PIPELINED_CFG), 1, lambda geo: pipelined.DEFAULT_VARIANT, "fp32")
