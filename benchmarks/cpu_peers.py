"""Time tdn's NumPy backend against CPU peers in one run and write the results as JSON.

Peers: ONNX Runtime on tdn's own ONNX export, OpenCV DNN 4.x reading the Darknet files
directly, and torch when a `torch` backend plugin is installed. Ratios are against ONNX
Runtime measured in the same run, the systems timed in alternation, each call after the
previous system's threads have gone idle (see time_interleaved and settle).
Each result has the median, interquartile range and minimum; peak_traced_mb is not measured
here (null). OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE change which OpenBLAS
kernel NumPy uses; when either is set, the script runs again in a child process without them.

    python benchmarks/cpu_peers.py [--cfg cfg/tiny.cfg] [--batch 1,32] [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tdn.bench import Timing, blas_info, child_processes, random_input
from tdn.graph import load_graph
from tdn.network import Network
from tdn.onnx_export import export_onnx
from tdn.plugins import registry
from tdn.weights import fold_params, random_params, write_weights

REPO = Path(__file__).resolve().parent.parent
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def peers(cfg: Path, workdir: Path):
    """name -> (predict function on an NCHW batch, version string), for every peer installed here."""
    graph = load_graph(cfg)
    raw = random_params(graph)
    weights = workdir / "random.weights"
    write_weights(weights, graph, raw)
    found = {}
    numpy_net = Network(graph, raw, registry().get("numpy"))
    found["numpy"] = (numpy_net.predict, f"numpy {np.__version__}")
    try:
        import onnxruntime

        onnx_path = workdir / "net.onnx"
        export_onnx(graph, fold_params(graph, raw), onnx_path)
        session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        found["onnxruntime"] = (lambda x: session.run(None, {"input": x})[0],
                                f"onnxruntime {onnxruntime.__version__}")
    except ImportError:
        print("onnxruntime not installed: skipped", file=sys.stderr)
    try:
        import cv2

        dnn = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))

        def opencv(x):
            dnn.setInput(x)
            return dnn.forward()
        found["opencv"] = (opencv, f"opencv {cv2.__version__}")
    except ImportError:
        print("opencv-python-headless<5 not installed: skipped", file=sys.stderr)
    if "torch" in registry().names():
        torch_net = Network(graph, raw, registry().get("torch"))
        found["torch"] = (torch_net.predict, "tdn torch backend")
    return graph, found


def cpu_seconds(children: list[Path]) -> float:
    """CPU time of this process and of `children` (nanosecond counters from /proc/PID/schedstat)."""
    total = time.process_time()
    for child in children:
        try:
            total += int((child / "schedstat").read_text().split()[0]) / 1e9
        except OSError:
            pass  # exited
    return total


def settle(window: float = 0.005, limit: float = 0.25) -> None:
    """Wait until this process's threads and child processes stop using the CPU (at most `limit` s).

    ONNX Runtime's thread pool keeps a core busy spinning for about 40 ms after each call
    (measured here), and the numpy backend's helper processes spin a few ms; without this wait,
    the system timed next in the round runs beside them.
    """
    children = child_processes()
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        before = cpu_seconds(children)
        time.sleep(window)
        if cpu_seconds(children) - before < 0.1 * window:
            return


def time_interleaved(systems: dict, x: np.ndarray, runs: int, min_seconds: float) -> list[Timing]:
    """Time every system on x in rounds (one call of each per round), so that all see the same load.

    A shared machine's load changes by the second; timing one system after another would give
    each a different machine. In a round each system, once the previous one's threads have gone
    idle (settle), runs once untimed, to wake its own threads as a caller running it back to
    back would find them, then once timed. Three untimed rounds first, then `runs` rounds or
    more until min_seconds of timed calls have passed.
    """
    for _ in range(3):
        for function, _version in systems.values():
            function(x)
    times: dict[str, list[float]] = {name: [] for name in systems}
    while min(len(t) for t in times.values()) < runs or sum(map(sum, times.values())) < min_seconds:
        for name, (function, _version) in systems.items():
            settle()
            function(x)
            begin = time.perf_counter()
            function(x)
            times[name].append(time.perf_counter() - begin)
    timings = []
    for name, seconds in times.items():
        ms = np.array(seconds) * 1000.0
        p25, median, p75 = np.percentile(ms, [25, 50, 75])
        timings.append(Timing(name, x.shape[0], x.shape[2], x.shape[3], len(ms), float(median), float(p25),
                              float(p75), float(ms.min()), None))
    return timings


def measure(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        graph, systems = peers(Path(args.cfg), Path(tmp))
        width, height = args.size
        results = []
        for batch in args.batch:
            x = random_input(batch, graph.net.channels, height, width)
            runs = max(10, args.runs // batch) if batch > 1 else args.runs
            for timing in time_interleaved(systems, x, runs, args.min_seconds):
                results.append(timing.as_dict() | {"version": systems[timing.name][1]})
                print(f"  {timing.name:<12} batch {batch:>3}: {timing.ms_per_image:7.2f} ms/image "
                      f"(median of {timing.runs}, IQR {timing.p25_ms:.1f}-{timing.p75_ms:.1f} ms, "
                      f"min {timing.min_ms:.1f} ms)", flush=True)
    ratios, ratios_min = {}, {}
    for batch in args.batch:
        for key, table in (("ms_per_image", ratios), ("min_ms", ratios_min)):
            by_name = {r["name"]: r[key] for r in results if r["batch"] == batch}
            if "onnxruntime" in by_name:
                table[str(batch)] = {f"{name}/onnxruntime": value / by_name["onnxruntime"]
                                     for name, value in by_name.items() if name != "onnxruntime"}
    return {
        "cfg": args.cfg, "width": width, "height": height, "gflop_per_image": graph.flops() / 1e9,
        "openblas_environment": {name: os.environ.get(name) for name in OPENBLAS_VARIABLES},
        "threadpools": blas_info(), "cores": len(os.sched_getaffinity(0)),
        "machine": platform.processor() or platform.machine(), "python": platform.python_version(),
        "load_average_before": args.load_before, "load_average_after": os.getloadavg()[0],
        "results": results, "ratios": ratios, "ratios_of_minimums": ratios_min,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfg", default=str(REPO / "cfg" / "tiny.cfg"))
    parser.add_argument("--size", default="224x224")
    parser.add_argument("--batch", default="1,32")
    parser.add_argument("--runs", type=int, default=60,
                        help="timed runs at batch 1 (fewer for bigger batches)")
    parser.add_argument("--min-seconds", type=float, default=3.0,
                        help="keep timing each case at least this long")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    width, _, height = args.size.partition("x")
    args.size = (int(width), int(height))
    args.batch = [int(b) for b in args.batch.split(",")]
    args.load_before = os.getloadavg()[0]
    label = "openblas-unset" if args.child else "openblas-as-set"
    print(f"{label}: {dict((n, os.environ.get(n)) for n in OPENBLAS_VARIABLES)}", flush=True)
    report = measure(args) | {"label": label}
    for batch, ratios in report["ratios"].items():
        print(f"  batch {batch}: " + ", ".join(f"{k} = {v:.2f}" for k, v in ratios.items())
              + " (medians); " + ", ".join(f"{v:.2f}" for v in report["ratios_of_minimums"][batch].values())
              + " (minimums)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"cpu_peers_{time.strftime('%Y%m%d-%H%M%S')}_{label}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    if not args.child:
        # Always measure without the variables too (the same run when they are not set).
        env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARIABLES}
        return subprocess.call([sys.executable, __file__, *sys.argv[1:], "--child"], env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
