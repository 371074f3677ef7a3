"""A Network's worker pool (backends/numpy/workers.py): threads by default, processes when asked,
one pool per Network, released by close() and `with`, and nothing running while idle."""

from __future__ import annotations

import gc
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from tdn.backends.numpy.team import PROCESSES_AVAILABLE, ProcessTeam, ThreadTeam

import tdn
from tdn.cli import main
from tdn.errors import BackendError
from tdn.graph import load_graph
from tdn.network import PARALLEL_VARIABLE
from tdn.weights import random_params, write_weights

from .conftest import REPO

needs_processes = pytest.mark.skipif(not PROCESSES_AVAILABLE, reason="process teams need Linux on x86-64")
needs_two_cores = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 if hasattr(os, "sched_getaffinity")
                                     else True, reason="one core: the plans run on the calling thread alone")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """Tiny Darknet with random weights at 64x64: large enough for a process team."""
    folder = tmp_path_factory.mktemp("tiny")
    cfg = folder / "tiny.cfg"
    cfg.write_text((REPO / "cfg" / "tiny.cfg").read_text().replace("height=224", "height=96")
                   .replace("width=224", "width=96"))
    weights = folder / "tiny.weights"
    graph = load_graph(cfg)
    write_weights(weights, graph, random_params(graph, 1))
    return cfg, weights


def _children() -> set[int]:
    """This process's live child processes (from /proc)."""
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids |= {int(pid) for pid in (task / "children").read_text().split()}
        except FileNotFoundError:
            pass  # a thread that ended meanwhile
    return pids


def _pool_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("tdn-")]


def _wait_until(condition, seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _x(cfg: Path, batch: int = 1) -> np.ndarray:
    graph = load_graph(cfg)
    return np.random.default_rng(0).random((batch, *graph.input_shape), dtype=np.float32)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts child processes in /proc")
def test_the_default_forks_nothing(tiny):
    before = _children()
    with tdn.load(*tiny, backend="numpy") as net:
        assert net.parallel is None and net.backend.workers.mode == "threads"
        net.predict(_x(tiny[0], 1))
        net.predict(_x(tiny[0], 3))
        assert _children() <= before  # no new child (one an earlier test left may end meanwhile)
        teams = [program.executor.team for program in net._programs.values()]
        assert all(team is None or isinstance(team, ThreadTeam) for team in teams)


@needs_two_cores
def test_threads_end_with_close_and_with_the_network(tiny):
    gc.collect()  # plans that earlier tests dropped, and their pools
    assert _wait_until(lambda: not _pool_threads())
    with tdn.load(*tiny, backend="numpy") as net:
        net.predict(_x(tiny[0], 2))
        assert _pool_threads()  # the batch's lanes ran on the pool
    assert not _pool_threads()  # close() waited for them
    net = tdn.load(*tiny, backend="numpy")
    net.predict(_x(tiny[0], 2))
    del net
    gc.collect()
    assert _wait_until(lambda: not _pool_threads())


@needs_two_cores
def test_idle_threads_block_instead_of_spinning(tiny):
    with tdn.load(*tiny, backend="numpy") as net:
        net.predict(_x(tiny[0], 1))
        time.sleep(0.05)
        start = time.process_time()  # every thread of the process
        time.sleep(0.3)
        assert time.process_time() - start < 0.03


@needs_processes
@needs_two_cores
def test_processes_when_asked_one_pool_per_network_and_released_by_close(tiny):
    before = _children()
    x1, x3 = _x(tiny[0], 1), _x(tiny[0], 3)
    with tdn.load(*tiny, backend="numpy") as plain:
        want1, want3 = plain.predict(x1), plain.predict(x3)
    cores = tdn.backends.numpy.cores.available_cores()
    with tdn.load(*tiny, backend="numpy", parallel="processes") as net:
        np.testing.assert_allclose(net.predict(x1), want1, rtol=1e-5, atol=1e-7)
        helpers = _children() - before
        assert 1 <= len(helpers) <= cores - 1
        assert isinstance(net.program(1, *x1.shape[2:]).executor.team, ProcessTeam)
        # Another batch size: its own program, but the Network's pool keeps one team's helpers.
        np.testing.assert_allclose(net.predict(x3), want3, rtol=1e-5, atol=1e-7)
        assert len(_children() - before) <= cores - 1
        np.testing.assert_allclose(net.predict(x1), want1, rtol=1e-5, atol=1e-7)  # forks again
        assert len(_children() - before) <= cores - 1
    assert _children() == before  # reaped by close()
    np.testing.assert_allclose(net.predict(x1), want1, rtol=1e-5, atol=1e-7)  # a closed network starts anew
    assert len(_children() - before) >= 1
    net.close()
    assert _children() == before


@needs_processes
@needs_two_cores
def test_idle_helper_processes_sleep(tiny):
    with tdn.load(*tiny, backend="numpy", parallel="processes") as net:
        net.predict(_x(tiny[0], 1))
        time.sleep(0.05)  # past the helpers' spin after a run

        def cpu() -> float:
            return sum(int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) for pid in _children()) / 1e9
        start = cpu()
        time.sleep(0.3)
        assert cpu() - start < 0.03


def test_parallel_mode_from_the_environment_and_bad_modes(tiny, monkeypatch):
    monkeypatch.setenv(PARALLEL_VARIABLE, "threads")
    with tdn.load(*tiny, backend="numpy") as net:
        assert net.parallel == "threads"
    monkeypatch.setenv(PARALLEL_VARIABLE, "fibres")
    with pytest.raises(BackendError, match="TDN_PARALLEL=fibres: backend 'numpy' offers the parallel modes "
                                           "threads, processes"):
        tdn.load(*tiny, backend="numpy")
    with pytest.raises(BackendError, match="parallel=processes: backend 'reference' offers the parallel modes none"):
        tdn.load(*tiny, backend="reference", parallel="processes")


@needs_processes
def test_cli_parallel_option(tiny, shared, capsys):
    dog = str(shared / "images" / "dog.jpg")
    for command in ("classify", "valid"):
        args = [command, str(tiny[0]), str(tiny[1]), "--backend", "numpy", "--parallel", "fibres"]
        args += [dog] if command == "classify" else [str(shared / "images"), "--labels", dog]
        assert main(args) == 1
        assert ("parallel=fibres: backend 'numpy' offers the parallel modes threads, processes"
                in capsys.readouterr().err)
    assert main(["classify", str(tiny[0]), str(tiny[1]), dog, "--backend", "numpy", "--parallel", "processes"]) == 0
    assert capsys.readouterr().out.count("\n") == 6  # the image's line and its top 5
    assert main(["bench", str(tiny[0]), str(tiny[1]), "--backend", "numpy", "--parallel", "processes",
                 "--runs", "2", "--warmup", "1"]) == 0
    assert "numpy/processes" in capsys.readouterr().out
    assert main(["bench", str(tiny[0]), "--backend", "numpy", "--parallel", "fibres", "--runs", "1",
                 "--warmup", "1"]) == 1
    assert "offers the parallel modes threads, processes" in capsys.readouterr().err
