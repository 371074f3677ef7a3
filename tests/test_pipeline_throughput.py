"""benchmarks/pipeline_throughput.py --versus-bench on a small cfg, with each decoder: it runs and
reports a line per cfg. Only that; the speeds themselves are the benchmark's business."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import REPO
from .test_onnx_export import CFG

SCRIPT = REPO / "benchmarks" / "pipeline_throughput.py"


@pytest.mark.parametrize("decoder", ["pillow", "darknet"])
def test_versus_bench_reports_classify_against_bench_with_either_decoder(tmp_path, decoder):
    cfg = tmp_path / "small.cfg"
    cfg.write_text(CFG)
    out = tmp_path / "versus.txt"
    done = subprocess.run([sys.executable, str(SCRIPT), "--versus-bench", str(cfg), "--images", "8", "--batch", "4",
                           "--rounds", "1", "--decoder", decoder, "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    header, _, _, row = out.read_text().splitlines()
    assert f"{decoder} decoder" in header
    name, classify, bench, ratio = row.split()
    assert name == "small.cfg" and float(classify) > 0 and float(bench) > 0
    assert float(ratio) == pytest.approx(float(classify) / float(bench), rel=0.02, abs=0.01)
