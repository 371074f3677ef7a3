"""Where the numpy plan's time goes: each step timed on one core, summed by what it runs.

For each cfg (random weights, the cfg's input size, one image), the plan's steps run one after
another on the calling thread with BLAS on one thread, --runs times; the median of each step is
grouped by kind, algorithm and map size and printed as a share of the whole.

    python benchmarks/numpy_profile.py cfg/tiny.cfg [more.cfg ...] [--runs 5]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from tdn.backends.numpy.plan import Executor
from tdn.backends.numpy.team import BLAS

from tdn.graph import load_graph
from tdn.weights import fold_params, random_params


def label(step) -> str:
    node = step.nodes[0]
    c, h, w = node.out_shape
    what = "+".join(n.kind for n in step.nodes)
    algorithm = getattr(step, "algorithm", None)
    size = "big" if h >= 56 else f"{h}x{w}" if h <= 16 else "28-55"
    return f"{what} {algorithm.name if algorithm else ''} {size}".replace("  ", " ")


def profile(cfg: str, runs: int) -> None:
    graph = load_graph(cfg)
    executor = Executor.of(graph, fold_params(graph, random_params(graph, 1)), 1, threads=1)
    x = np.random.default_rng(0).random((1, *graph.input_shape), np.float32)
    times: dict[int, list[float]] = defaultdict(list)
    with BLAS.limit(limits=1, user_api="blas"):
        for _ in range(runs + 1):
            executor._load(x)
            for index, step in enumerate(executor.steps):
                start = time.perf_counter()
                for task in step.tasks:
                    task()
                times[index].append(time.perf_counter() - start)
    by_label: dict[str, float] = defaultdict(float)
    for index, step in enumerate(executor.steps):
        by_label[label(step)] += float(np.median(times[index][1:]))
    total = sum(by_label.values())
    print(f"{Path(cfg).name}: {total * 1e3:.1f} ms an image on one core, {graph.flops() / 1e9:.2f} GFLOP")
    for name, seconds in sorted(by_label.items(), key=lambda item: -item[1]):
        if seconds >= 0.02 * total:
            print(f"  {100 * seconds / total:5.1f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cfgs", nargs="+")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for cfg in args.cfgs:
        profile(cfg, args.runs)


if __name__ == "__main__":
    main()
