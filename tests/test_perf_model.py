"""The roofline model (tdn/perf_model.py) on layers small enough to count by hand, its totals
against `tdn summary`, and the script that prints it (benchmarks/perf_model.py)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from tdn.backends.cuda.plan import build_plan

from tdn.cli import main as tdn_main
from tdn.gpu_specs import GPUS, GRAPH_LAUNCH_S, GRAPH_NODE_S
from tdn.graph import Graph, graph_from_text, load_graph
from tdn.layers import LAYER_KINDS
from tdn.perf_model import layer_costs, predict

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks/perf_model.py"
H100, H200 = GPUS["h100"], GPUS["h200"]
ZOO = ("alexnet", "darknet", "darknet19", "darknet19_448", "darknet53", "extraction", "resnet18",
       "resnet50", "tiny", "vgg-16")


def cfg(body: str, channels: int = 8, size: int = 4) -> Graph:
    return graph_from_text(f"[net]\nheight={size}\nwidth={size}\nchannels={channels}\n\n{body}")


def plan_launches(graph: Graph, batch: int = 1) -> list[tuple[int, ...]]:
    return [tuple(node.index for node in step.nodes) for step in build_plan(graph, batch).steps]


CONV_1X1 = "[convolutional]\nfilters=16\nsize=1\nstride=1\nactivation=linear\n"
MAXPOOL = "[maxpool]\nsize=2\nstride=2\n"


def test_a_1x1_convolution_by_hand():
    graph = cfg(CONV_1X1)  # 8x4x4 -> 16x4x4, weights 16x8, 16 biases
    (fp32,) = layer_costs(graph, 2, "fp32", [(0,)])
    (fp16,) = layer_costs(graph, 2, "fp16", [(0,)])
    assert fp32.flops == fp16.flops == 2 * (2 * 16 * 8 * 16)  # batch x 2 x filters x channels x pixels
    # fp32: input 2*128*4, output 2*256*4, weights 128*4, biases 16*4
    assert fp32.activation_bytes == 1024 + 2048 and fp32.parameter_bytes == 512 + 64
    # fp16: activations and weights halve; biases stay float32
    assert fp16.activation_bytes == 512 + 1024 and fp16.parameter_bytes == 256 + 64
    assert fp16.intensity == pytest.approx(8192 / 1856)
    assert fp16.roofline_s(H100, "fp16") == pytest.approx(1856 / 3.35e12)
    assert fp16.bound(H100, "fp16") == "memory"
    assert fp32.roofline_s(H200, "fp32") == pytest.approx(3648 / 4.8e12)


def test_a_large_convolution_is_compute_bound_at_the_precisions_peak():
    graph = cfg("[convolutional]\nfilters=256\nsize=3\nstride=1\npad=1\nactivation=leaky\n", 256, 56)
    (row,) = layer_costs(graph, 64, "fp32", [(0,)])
    assert row.flops == 64 * 2 * 256 * 9 * 256 * 56 * 56
    assert row.bound(H100, "fp32") == "compute"
    assert row.roofline_s(H100, "fp32") == pytest.approx(row.flops / 66.9e12)
    (tensor,) = layer_costs(graph, 64, "fp16", [(0,)])
    assert tensor.roofline_s(H100, "fp16") == pytest.approx(row.flops / 989.4e12)


def test_a_maxpool_by_hand():
    graph = cfg(MAXPOOL)  # 8x4x4 -> 8x2x2
    (row,) = layer_costs(graph, 1, "fp32", [(0,)])
    assert row.flops == 0 and row.parameter_bytes == 0
    assert row.activation_bytes == (8 * 16 + 8 * 4) * 4
    assert row.bound(H100, "fp32") == "memory"
    assert row.roofline_s(H100, "fp32") == pytest.approx(640 / 3.35e12)
    (half,) = layer_costs(graph, 3, "fp16", [(0,)])
    assert half.activation_bytes == 3 * 640 / 2


def test_batch_norm_statistics_are_folded_away_before_they_are_read():
    graph = cfg(CONV_1X1 + "batch_normalize=1\n")
    (row,) = layer_costs(graph, 1, "fp32", [(0,)])
    assert row.parameter_bytes == 16 * 8 * 4 + 16 * 4  # weights and one bias per filter


@pytest.mark.parametrize("body", [CONV_1X1, CONV_1X1 + "batch_normalize=1\n", "[connected]\noutput=5\n",
                                  "[connected]\noutput=5\nbatch_normalize=1\n", "[batchnorm]\n"])
def test_folded_layout_names_what_fold_returns(body):
    node = cfg(body).nodes[0]
    rng = np.random.default_rng(0)
    raw = {name: rng.random(shape, np.float32) + 0.5 for name, shape in node.layer.weight_layout(node.in_shape)}
    folded = node.layer.fold(raw)
    assert {name: array.shape for name, array in folded.items()} == dict(node.layer.folded_layout(node.in_shape))


def test_every_kind_with_weights_says_what_it_keeps():
    # A kind whose fold changes its arrays must override folded_layout; the others inherit it.
    overriding = {kind for kind, cls in LAYER_KINDS.items() if "folded_layout" in vars(cls)}
    folding = {kind for kind, cls in LAYER_KINDS.items() if "fold" in vars(cls)}
    assert overriding == folding == {"convolutional", "connected", "batchnorm"}


def test_layers_that_compute_nothing_or_run_fused_move_only_what_they_must():
    graph = cfg(CONV_1X1 + "\n[dropout]\nprobability=.5\n\n[avgpool]\n\n[softmax]\n")
    launches = plan_launches(graph)
    assert launches == [(0,), (2, 3)]
    conv, dropout, avgpool, softmax = layer_costs(graph, 1, "fp32", launches)
    assert dropout.bytes == 0 and not dropout.starts_launch
    assert avgpool.starts_launch and not softmax.starts_launch
    assert avgpool.activation_bytes == (16 * 16 + 16) * 4  # it reads the conv's output past the dropout
    assert softmax.activation_bytes == 16 * 4  # its input never left the chip: it only writes
    assert predict(graph, 1, "fp32", H100, launches).kernels == 2


def test_a_shortcut_reads_both_of_its_inputs():
    graph = cfg(CONV_1X1 + "\n" + CONV_1X1 + "\n[shortcut]\nfrom=-2\nactivation=linear\n")
    shortcut = layer_costs(graph, 1, "fp16", plan_launches(graph))[2]
    assert shortcut.activation_bytes == 3 * 16 * 16 * 2


def test_a_route_reads_only_the_layers_it_lists_and_a_crop_only_its_window():
    graph = cfg(CONV_1X1 + "\n" + MAXPOOL + "\n[route]\nlayers=-2\n")  # 16x4x4 -> 16x2x2 -> 16x4x4
    route = layer_costs(graph, 1, "fp32", plan_launches(graph))[2]
    assert route.activation_bytes == 2 * 16 * 16 * 4
    graph = cfg("[crop]\ncrop_height=2\ncrop_width=3\n")  # 8x4x4 -> 8x2x3
    (crop,) = layer_costs(graph, 1, "fp16", plan_launches(graph))
    assert crop.activation_bytes == 2 * 8 * 6 * 2


def test_floors_and_totals_of_tiny_darknet_at_batch_1():
    graph = load_graph(REPO / "cfg/tiny.cfg")
    p = predict(graph, 1, "fp16", H100, plan_launches(graph))
    assert p.kernels == 21 == len(build_plan(graph, 1).steps)
    assert p.launch_floor_s == pytest.approx(GRAPH_LAUNCH_S + 21 * GRAPH_NODE_S)
    assert p.transfer_floor_s("uint8") == pytest.approx(2 * GRAPH_NODE_S + (3 * 224 * 224 + 1000 * 4) / 64e9)
    assert p.transfer_floor_s("float32") == pytest.approx(2 * GRAPH_NODE_S + (3 * 224 * 224 * 4 + 4000) / 64e9)
    assert p.roofline_s == pytest.approx(sum(row.roofline_s(H100, "fp16") for row in p.layers))
    assert p.host_to_host_s("uint8") == pytest.approx(
        GRAPH_LAUNCH_S + p.roofline_s + 21 * GRAPH_NODE_S + p.transfer_floor_s("uint8"))
    assert p.images_per_s("uint8") == pytest.approx(1 / p.host_to_host_s("uint8"))
    assert p.dominant().roofline_s(H100, "fp16") == max(row.roofline_s(H100, "fp16") for row in p.layers)


def test_streamed_throughput_is_set_by_the_slowest_of_kernels_and_copies():
    graph = load_graph(REPO / "cfg/tiny.cfg")
    p = predict(graph, 256, "fp16", H100, plan_launches(graph, 256))
    upload = GRAPH_NODE_S + 256 * 3 * 224 * 224 * 4 / 64e9
    assert p.upload_s("float32") == pytest.approx(upload) and upload > p.device_s
    assert p.streamed_images_per_s("float32") == pytest.approx(256 / upload)
    assert p.streamed_images_per_s("uint8") == pytest.approx(256 / p.device_s)


def summary_bflops(capsys, path: Path) -> float:
    assert tdn_main(["summary", str(path)]) == 0
    return float(re.search(r"Total BFLOPs (\S+)", capsys.readouterr().out).group(1))


@pytest.mark.parametrize("name", ZOO)
def test_totals_agree_with_tdn_summary(capsys, shared, name):
    graph = load_graph(shared / "cfg" / f"{name}.cfg")
    p = predict(graph, 8, "tf32", H200, plan_launches(graph, 8))
    assert p.flops == pytest.approx(8 * graph.flops())
    assert round(p.flops / 8 / 1e9, 3) == summary_bflops(capsys, shared / "cfg" / f"{name}.cfg")


def test_rejects_what_it_cannot_model():
    graph = cfg(MAXPOOL)
    with pytest.raises(ValueError, match="batch must be at least 1"):
        layer_costs(graph, 0, "fp32", [(0,)])
    with pytest.raises(ValueError, match="unknown precision 'int8'"):
        layer_costs(graph, 1, "int8", [(0,)])


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("perf_model_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_prints_the_summary_targets_and_layer_rows(script, capsys):
    assert script.main(["--batch", "1,256", "--gpu", "h100", "--precision", "fp16", "--layers"]) == 0
    out = capsys.readouterr().out
    assert "== tiny.cfg: 224x224x3 input, 0.983 BFLOPs per image, 21 kernels per forward ==" in out
    assert "batch 1, H100 SXM, fp16:" in out and "batch 256, H100, fp16, uint8 upload:" in out
    rows = [line for line in out.splitlines() if re.match(r"\s+\d+ (convolutional|maxpool|avgpool|softmax) ", line)]
    assert len(rows) == 2 * 22  # every layer at each of the two batch sizes
    assert not re.search(r"\b(nan|inf)\b", out, re.IGNORECASE)


def test_script_refuses_bad_arguments_in_one_line(script, capsys, tmp_path):
    for argv in (["--batch", "0"], ["--precision", "int8"], ["--gpu", "a100"]):
        with pytest.raises(SystemExit):
            script.parse_args(argv)
        assert "error: argument" in capsys.readouterr().err
    bad = tmp_path / "bad.cfg"
    bad.write_text("[net]\nheight=8\nwidth=8\nchannels=3\n\n[wormhole]\n")
    assert script.main(["--cfg", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.cfg:6: unknown layer type [wormhole]" in err
