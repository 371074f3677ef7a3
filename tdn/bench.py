"""Timing a network's forward pass: warm-up, repeated runs, median and spread, peak memory.

Used by `tdn bench` and benchmarks/. Every run is timed separately with perf_counter; the
median is reported because the runs of a shared machine have a long tail, the spread as the
interquartile range.
"""

from __future__ import annotations

import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Timing:
    name: str
    batch: int
    height: int
    width: int
    runs: int
    median_ms: float
    p25_ms: float
    p75_ms: float
    min_ms: float
    peak_traced_mb: float
    """Peak bytes allocated through Python and NumPy during one run (tracemalloc), in MB."""

    @property
    def ms_per_image(self) -> float:
        return self.median_ms / self.batch

    @property
    def images_per_second(self) -> float:
        return 1000.0 * self.batch / self.median_ms

    def as_dict(self) -> dict:
        return asdict(self) | {"ms_per_image": self.ms_per_image, "images_per_second": self.images_per_second}


def max_rss_mb() -> float:
    """The process's peak resident memory so far, in MB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def child_processes() -> list[Path]:
    """/proc entries of this process's live children, such as the numpy backend's helper
    processes (none where there is no /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone since the listing
        if int(fields[1]) == os.getpid():  # the field after the state: the parent's pid
            children.append(stat.parent)
    return children


def children_max_rss_mb() -> float:
    """The peak resident memory of this process's live children, summed, in MB (pages shared
    with this process, such as the layer buffers of a process team, count in both)."""
    total_kib = 0
    for child in child_processes():
        try:
            status = (child / "status").read_text()
        except OSError:
            continue  # exited
        total_kib += sum(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return total_kib / 1024


def time_function(name: str, function: Callable[[np.ndarray], object], x: np.ndarray,
                  warmup: int = 3, runs: int = 20, min_seconds: float = 0.0,
                  progress: Callable[[Iterable[int], float], Iterable[int]] | None = None) -> Timing:
    """Time function(x): `warmup` untimed calls, then `runs` timed ones (more until min_seconds).

    progress(runs, expected_seconds) wraps the range of timed runs (with a tqdm bar, say).
    """
    last = 0.0
    for _ in range(max(1, warmup)):
        begin = time.perf_counter()
        function(x)
        last = time.perf_counter() - begin
    tracemalloc.start()
    function(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    times = []
    start = time.perf_counter()
    for _ in progress(range(runs), runs * last) if progress else range(runs):
        begin = time.perf_counter()
        function(x)
        times.append(time.perf_counter() - begin)
    while time.perf_counter() - start < min_seconds:
        begin = time.perf_counter()
        function(x)
        times.append(time.perf_counter() - begin)
    ms = np.array(times) * 1000.0
    p25, median, p75 = np.percentile(ms, [25, 50, 75])
    return Timing(name, x.shape[0], x.shape[2], x.shape[3], len(ms), float(median), float(p25),
                  float(p75), float(ms.min()), peak / 1e6)


def random_input(batch: int, channels: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Pixels in [0, 1), like tdn's preprocessing produces."""
    return np.random.default_rng(seed).random((batch, channels, height, width), np.float32)


def blas_info() -> list[dict]:
    """What threadpoolctl reports about the loaded BLAS and OpenMP libraries."""
    from threadpoolctl import threadpool_info

    return threadpool_info()
