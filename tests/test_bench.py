"""tdn bench and the timing library behind it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tdn.backends.numpy.memory import shared_zeros
from tdn.backends.numpy.team import PROCESSES_AVAILABLE, ProcessTeam

from tdn.bench import child_processes, children_max_rss_mb, random_input, time_function
from tdn.cli import main

CFG = "[net]\nchannels=3\nheight=12\nwidth=10\n\n[convolutional]\nfilters=8\nsize=3\npad=1\n" \
      "activation=leaky\n\n[avgpool]\n\n[softmax]\n"


def test_time_function_counts_runs_and_orders_its_statistics():
    calls = []
    timing = time_function("fake", lambda x: calls.append(x.shape), random_input(4, 3, 5, 6),
                           warmup=2, runs=7)
    assert len(calls) == 2 + 1 + 7  # warm-up, the traced run, the timed runs
    assert timing.runs == 7 and timing.batch == 4 and (timing.height, timing.width) == (5, 6)
    assert 0 <= timing.min_ms <= timing.p25_ms <= timing.median_ms <= timing.p75_ms
    assert timing.ms_per_image == pytest.approx(timing.median_ms / 4)


def test_peak_memory_sees_the_allocations_of_a_run():
    timing = time_function("alloc", lambda x: np.ones(2_000_000, np.float32), random_input(1, 1, 2, 2),
                           warmup=1, runs=2)
    assert timing.peak_traced_mb >= 8.0


@pytest.mark.skipif(not PROCESSES_AVAILABLE, reason="process teams need Linux on x86-64")
def test_the_memory_of_helper_processes_is_measured():
    touched = shared_zeros((1,), np.int64)

    def work(rank):
        if rank == 1:
            np.ones(8_000_000, np.float32).sum()  # 32 MB resident in the helper
            touched[0] = 1

    team = ProcessTeam(2, work)
    team.run()
    helper = team.pids[0]
    try:
        assert touched[0] == 1
        assert helper in [int(child.name) for child in child_processes()]
        assert children_max_rss_mb() >= 30
    finally:
        team.close()
    assert helper not in [int(child.name) for child in child_processes()]


def test_bench_cli_writes_json_for_every_backend_and_batch(tmp_path, capsys):
    cfg = tmp_path / "small.cfg"
    cfg.write_text(CFG)
    out = tmp_path / "bench.json"
    code = main(["bench", "--backend", "numpy", "--backend", "numpy-exact", "--batch", "1,3",
                 "--size", "16x8", "--runs", "3", "--json", str(out), str(cfg)])
    assert code == 0
    report = json.loads(out.read_text())
    cases = [(r["name"], r["batch"], r["width"], r["height"], r["runs"]) for r in report["results"]]
    assert cases == [("numpy", 1, 16, 8, 3), ("numpy", 3, 16, 8, 3),
                     ("numpy-exact", 1, 16, 8, 3), ("numpy-exact", 3, 16, 8, 3)]
    assert all(r["images_per_second"] > 0 for r in report["results"])
    assert report["weights"] == "random" and report["threadpools"]
    assert "numpy-exact" in capsys.readouterr().out


def test_bench_rejects_a_bad_batch_list(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--batch", "1,x", "cfg.cfg"])
    assert exit_info.value.code == 2
    assert "expected batch sizes like 1,8,32" in capsys.readouterr().err
