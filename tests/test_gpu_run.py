"""The lent-GPU run (benchmarks/gpu_run.py) and its variant check (benchmarks/variant_check.py)
without a GPU: the steps and their limits, the dry run, the step runner and its summary, and the
check's comparison, run with the interpreter on both sides."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from tdn.backends.cuda import device

from tests.conftest import CUDA_REASON

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)  # imports neither CuPy nor torch at module level
    return module


@pytest.fixture(scope="module")
def gpu_run():
    return _load("gpu_run")


@pytest.fixture(scope="module")
def variant_check():
    return _load("variant_check")


def test_the_steps_fit_the_ten_minutes_in_order(gpu_run, tmp_path, shared):
    args = gpu_run.parse_args(["--out", str(tmp_path / "out"), "--shared", str(shared)])
    steps = gpu_run.plan_steps(args)
    assert [s.name for s in steps] == ["install", "environment", "variant-check", "pipelined-check", "gpu-tests",
                                       "tune", "bench"]
    assert args.budget < 600 and all(s.limit_s <= args.budget for s in steps)
    assert "tests/test_cuda_pipelined.py" in steps[4].command
    tune = steps[5].command
    assert "-m tdn tune --backend cuda" in tune and str((shared / "cfg" / "vgg-16.cfg").resolve()) in tune
    assert "--batch 1,64,256 --precision fp32,fp16" in tune and f"{tmp_path}/out/tuned/tuned.json" in tune
    assert f"TDN_TUNED_DIR={tmp_path}/out/tuned" in steps[6].command and "--tensorrt" in steps[6].command


def test_dry_run_prints_the_steps_and_runs_nothing(gpu_run, tmp_path, capsys):
    assert gpu_run.main(["--out", str(tmp_path / "out"), "--dry-run", "--skip", "gpu-tests"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[0] for line in lines[:-1]] == ["install", "environment", "variant-check",
                                                            "pipelined-check", "tune", "bench"]
    assert lines[0].startswith("install (at most 120 s, required): ")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, message", [(["--skip", "lunch"], "unknown step(s) to skip: lunch"),
                                           (["--budget", "0"], "--budget must be positive")])
def test_bad_arguments_are_one_line(gpu_run, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit):
        gpu_run.parse_args(["--out", str(tmp_path), *argv])
    assert message in capsys.readouterr().err


def test_steps_run_in_order_with_limits_and_a_summary(gpu_run, tmp_path):
    Step = gpu_run.Step
    steps = [Step("ok", "echo hello", 10), Step("fails", "exit 3", 10), Step("slow", "sleep 5", 1),
             Step("needed", "exit 1", 10, required=True), Step("never", "true", 10)]
    assert gpu_run.run_steps(steps, tmp_path, budget=60) == 1
    records = json.loads((tmp_path / "summary.json").read_text())["steps"]
    assert [(r["name"], r["rc"]) for r in records] == [("ok", 0), ("fails", 3), ("slow", None), ("needed", 1)]
    assert (tmp_path / "ok.log").read_text() == "hello\n"
    assert "stopped after its limit of 1 s" in (tmp_path / "slow.log").read_text()
    assert records[2]["seconds"] < 4


def test_a_step_past_the_budget_is_recorded_not_run(gpu_run, tmp_path):
    steps = [gpu_run.Step("first", "sleep 2", 10), gpu_run.Step("second", "touch ran", 10)]
    assert gpu_run.run_steps(steps, tmp_path, budget=1) == 1
    records = json.loads((tmp_path / "summary.json").read_text())["steps"]
    assert records[1]["note"] == "no time left in the budget" and not (gpu_run.REPO / "ran").exists()


def test_variant_check_flags_a_single_bit_in_fp32_and_tolerates_rounding_in_fp16(variant_check):
    expected = {("m64n64k16", "fp32", 0): np.ones(4, np.float32), ("m64n64k16", "fp16", 0): np.ones(4, np.float32)}
    got = {key: value.copy() for key, value in expected.items()}
    got[("m64n64k16", "fp32", 0)][1] = np.nextafter(np.float32(1), np.float32(2))
    got[("m64n64k16", "fp16", 0)][1] = 1.001
    rows = {row["precision"]: row for row in variant_check.compare(got, expected)}
    assert not rows["fp32"]["ok"] and rows["fp16"]["ok"] and not rows["fp16"]["identical"]


@pytest.mark.skipif(CUDA_REASON is not None, reason=f"no interpreter: {CUDA_REASON}")
def test_variant_check_runs_every_variant_and_precision(variant_check, monkeypatch):
    """The check's own run, interpreted on both sides (on a GPU machine one side is the GPU)."""
    from tdn.backends.cuda import kernels, tiling

    monkeypatch.setenv("TDN_CUDA_INTERPRET", "1")
    try:
        first = variant_check.run_all(interpreted=True)
        second = variant_check.run_all(interpreted=True)
    finally:
        device.device.cache_clear()
    assert len(first) == len(tiling.CONV_VARIANTS) * len(kernels.CONV_ENTRY) * len(variant_check.SHAPES)
    assert all(row["ok"] and row["identical"] for row in variant_check.compare(first, second))
