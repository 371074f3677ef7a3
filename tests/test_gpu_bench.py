"""The GPU benchmark's CPU-side logic: argument parsing, ratios, and the JSON it writes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks/gpu_bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gpu_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports neither CuPy nor torch at module level
    return module


def test_defaults_are_the_issue_batches(bench):
    args = bench.parse_args([])
    assert args.batches == [1, 8, 64, 256] and args.size == 224
    assert bench.parse_args(["--batches", "2,4"]).batches == [2, 4]


def test_rejects_non_positive_batches(bench):
    with pytest.raises(SystemExit):
        bench.parse_args(["--batches", "0,8"])


def test_summarise_gives_throughput_and_ratio_to_torch_best(bench):
    rows = bench.summarise({8: {"cuda-fp32": 0.5, "cuda-fp16": 0.25, "torch-eager": 2.0, "torch-cuda-graph": 1.0}})
    by_entry = {row["entry"]: row for row in rows}
    assert by_entry["cuda-fp32"]["images_per_s"] == pytest.approx(16000)
    assert by_entry["cuda-fp32"]["speedup_vs_torch_best"] == pytest.approx(2.0)
    assert by_entry["cuda-fp16"]["speedup_vs_torch_best"] == pytest.approx(4.0)
    assert by_entry["torch-eager"]["speedup_vs_torch_best"] == pytest.approx(0.5)
    assert bench.summarise({1: {"cuda-fp32": 1.0}})[0]["speedup_vs_torch_best"] is None


def test_write_result(bench, tmp_path):
    path = bench.write_result(tmp_path / "r", "NVIDIA H100 80GB HBM3", {"cupy": "14"},
                              [{"batch": 1, "entry": "cuda", "ms_per_batch": 0.1}])
    assert path.parent == tmp_path / "r" and path.name.startswith("nvidia-h100-80gb-hbm3-")
    data = json.loads(path.read_text())
    assert data["device"] == "NVIDIA H100 80GB HBM3" and data["results"][0]["ms_per_batch"] == 0.1


def test_median_ms_times_each_repeat(bench):
    calls = []
    assert bench.median_ms(lambda: calls.append(1), repeats=5, warmup=2) >= 0
    assert len(calls) == 7


def test_precisions_default_to_all_the_cuda_backends(bench):
    from tdn.backends.cuda.backend import CudaBackend

    assert bench.parse_args([]).precisions == list(CudaBackend.precisions) == list(bench.PRECISIONS)
    assert bench.parse_args(["--precisions", "fp16,fp32"]).precisions == ["fp16", "fp32"]


def test_rejects_unknown_precisions(bench, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--precisions", "fp32,bf16"])
    assert "unknown precision(s) bf16" in capsys.readouterr().err
