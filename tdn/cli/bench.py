"""tdn bench: time a network's forward pass per backend and batch size."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable

from tdn.bench import blas_info, children_max_rss_mb, max_rss_mb, random_input, time_function
from tdn.cli.classify import add_parallel_option
from tdn.cli.options import parse_size, positive_int
from tdn.errors import TdnError
from tdn.files import atomic_file, check_output_path
from tdn.graph import MAX_BUFFER_VALUES, Graph, load_graph
from tdn.network import Network
from tdn.plugins import registry
from tdn.weights import random_params, read_weights

# Show a progress bar when the timed runs should take longer than this.
PROGRESS_AFTER_SECONDS = 2.0


def batch_list(text: str) -> list[int]:
    """'1,8,32' -> [1, 8, 32]."""
    try:
        return [positive_int(part) for part in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected batch sizes like 1,8,32, got '{text}'") from None


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="time the forward pass",
        description="Time a network's forward pass: warm-up, then many runs; prints the median, "
                    "the interquartile range, ms per image, images per second and the most memory "
                    "NumPy allocated during one run (alloc MB). "
                    "Without WEIGHTS the network gets random weights.")
    parser.add_argument("cfg", help="Darknet .cfg file")
    parser.add_argument("weights", nargs="?", help="Darknet .weights file (default: random weights)")
    parser.add_argument("--backend", action="append", dest="backends", metavar="B",
                        help="backend to time; repeat for several (default: auto)")
    parser.add_argument("--precision", help="arithmetic the backends compute in (default: each one's first)")
    parser.add_argument("--batch", type=batch_list, default=[1], help="batch sizes, like 1,8,32 (default 1)")
    parser.add_argument("--size", type=parse_size, help="input WIDTHxHEIGHT (default: the cfg's)")
    parser.add_argument("--runs", type=positive_int, default=20, help="timed runs per case (default 20)")
    parser.add_argument("--warmup", type=positive_int, default=3, help="untimed runs first (default 3)")
    add_parallel_option(parser)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.set_defaults(run=run, order="tdn bench [options] CFG [WEIGHTS]")


def _progress(label: str):
    from tqdm import tqdm

    def wrap(runs: Iterable[int], expected_seconds: float) -> Iterable[int]:
        # A bar only for a person watching: on a terminal, for runs long enough to wait on.
        if expected_seconds < PROGRESS_AFTER_SECONDS or not sys.stderr.isatty():
            return runs
        return tqdm(runs, desc=label, leave=False, file=sys.stderr, unit="run")
    return wrap


def _time(network: Network, graph: Graph, batch: int, width: int, height: int, args: argparse.Namespace) -> dict:
    x = random_input(batch, graph.net.channels, height, width)
    name = network.backend.name + (f"/{network.parallel}" if network.parallel else "")
    timing = time_function(name, network.predict, x, args.warmup, args.runs,
                           progress=_progress(f"{name} batch {batch}"))
    print(f"{timing.name:<14} {batch:>5} {timing.median_ms:>10.2f} "
          f"{timing.p25_ms:>7.2f}-{timing.p75_ms:<7.2f} {timing.ms_per_image:>9.2f} "
          f"{timing.images_per_second:>9.1f} {timing.peak_traced_mb:>8.1f}")
    return timing.as_dict()


def run(args: argparse.Namespace) -> int:
    check_output_path(args.json, "--json")
    graph = load_graph(args.cfg)
    width, height = args.size or (graph.net.width, graph.net.height)
    resized = graph.resized(height, width)  # a size whose buffers would be absurd: a cfg error now
    largest = max(args.batch) * math.prod(resized.input_shape)
    if largest > MAX_BUFFER_VALUES:
        raise TdnError(f"--batch {max(args.batch)} at {width}x{height}: the input would hold {largest} "
                       f"values, more than the {MAX_BUFFER_VALUES} tdn allows in one buffer")
    params = read_weights(args.weights, graph)[1] if args.weights else random_params(graph)
    results = []
    print(f"{'backend':<14} {'batch':>5} {'median ms':>10} {'IQR ms':>15} {'ms/image':>9} "
          f"{'images/s':>9} {'alloc MB':>8}")
    for name in args.backends or ["auto"]:
        backend = registry().get(name)
        parallel = args.parallel if backend.parallel_modes else None  # the others have one way
        with Network(graph, params, backend, args.precision, parallel) as network:
            for batch in args.batch:
                results.append(_time(network, graph, batch, width, height, args))

    helpers = children_max_rss_mb()
    print("tdn: alloc MB: the most memory NumPy and Python allocated at once during one run (tracemalloc); "
          "buffers a backend allocates otherwise (BLAS, CUDA, shared memory) are not in it", file=sys.stderr)
    print(f"tdn: process peak resident memory: {max_rss_mb():.0f} MB"
          + (f", its helper processes {helpers:.0f} MB" if helpers else ""), file=sys.stderr)
    if args.json:
        report = {"cfg": args.cfg, "weights": args.weights or "random", "width": width, "height": height,
                  "results": results, "max_rss_mb": max_rss_mb(), "helpers_max_rss_mb": helpers,
                  "threadpools": blas_info()}
        with atomic_file(args.json, what="--json file") as handle:
            handle.write(json.dumps(report, indent=2) + "\n")
    return 0
