"""benchmarks/cpu_peers.py on a small cfg: both modes, every system asked for, JSON and table written.
Only that it runs and reports; the speeds themselves are the benchmark's business."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .conftest import REPO
from .test_onnx_export import CFG

SCRIPT = REPO / "benchmarks" / "cpu_peers.py"


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_a_subset_writes_json_and_a_table(tmp_path):
    cfg = tmp_path / "small.cfg"
    cfg.write_text(CFG)
    out = tmp_path / "results"
    done = run("--cfg", str(cfg), "--batch", "1,2", "--systems", "numpy,onnxruntime", "--runs", "2",
               "--warmup", "0", "--min-seconds", "0", "--idle-seconds", "0.01", "--out", str(out))
    assert done.returncode == 0, done.stderr
    [json_path] = out.glob("cpu_peers_*.json")
    report = json.loads(json_path.read_text())
    cases = {(r["cfg"], r["batch"], r["mode"], r["name"]) for r in report["results"]}
    assert cases == {("small", batch, mode, name) for batch in (1, 2) for mode in ("steady", "idle")
                     for name in ("numpy", "onnxruntime")}
    assert all(r["runs"] == 2 and r["min_ms"] <= r["median_ms"] for r in report["results"])
    # The export computes what numpy does, so the times compare the same work.
    assert all(r["max_abs_difference_from_numpy"] <= 1e-5 for r in report["results"])
    assert {(row["batch"], row["mode"]) for row in report["ratios"]} == {(1, "steady"), (1, "idle"),
                                                                          (2, "steady"), (2, "idle")}
    assert report["machine"]["cores"] >= 1 and "onnxruntime" in " ".join(r["version"] for r in report["results"])
    table = json_path.with_suffix(".md").read_text()
    assert "## steady" in table and "## idle" in table and "| small | 2 |" in table
    # Which BLAS kernels ran (AVX2 or AVX-512 ones): ratios from different machines differ by them.
    architectures = {pool["architecture"] for pool in report["threadpools"] if pool.get("architecture")}
    assert all(f"{architecture} kernels)" in table for architecture in architectures)


def test_an_unknown_cfg_is_one_line(tmp_path):
    done = run("--cfg", "no-such-network", "--out", str(tmp_path))
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and "no-such-network" in done.stderr
    assert not list(tmp_path.iterdir())
