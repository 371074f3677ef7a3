"""Time tdn's NumPy backend against CPU peers on Darknet's classifier zoo; write JSON and a table.

The NumPy backend runs twice over: `numpy` in its default mode (threads in the calling process)
and `numpy-processes` with its opt-in forked helper processes (`--parallel processes`).

Peers: ONNX Runtime on tdn's own ONNX export, OpenCV DNN 4.x reading the Darknet files
directly (where it can read the cfg), and torch when a `torch` backend plugin is installed.
Every cfg runs at its own input size with random weights, at each batch size, in two modes:

- steady: a caller running back to back. In each round every system, once the previous system's
  threads have gone idle (settle), runs once untimed, to wake its own threads as such a caller
  finds them, then once timed.
- idle: a sporadic caller. In each round every system is timed on its first call after
  --idle-seconds of sleep (longer than any pool spins: ONNX Runtime's about 40 ms).

The systems are timed in alternation (one call of each per round, the order rotating), so that all
see the same load on a shared machine; ratios are against ONNX Runtime in the same run. Each result
has the median, interquartile range and minimum, and the largest difference of the peer's output
from the numpy backend's (a peer that computes something else is not timed fairly).
When OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE is set (they change which OpenBLAS kernel NumPy
uses), the script runs again in a child process without them.

    python benchmarks/cpu_peers.py                                   # the whole zoo, batch 1 and 32
    python benchmarks/cpu_peers.py --cfg tiny,resnet18 --batch 1 --runs 5 --modes steady
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tdn.backends.numpy.cores import available_cores

from tdn.bench import Timing, blas_info, child_processes, random_input
from tdn.errors import TdnError
from tdn.graph import Graph, load_graph
from tdn.network import Network
from tdn.onnx_export import export_onnx
from tdn.plugins import registry
from tdn.weights import fold_params, random_params, write_weights

REPO = Path(__file__).resolve().parent.parent
ZOO = Path(os.environ.get("TDN_SHARED", REPO.parent / "shared")) / "darknet" / "cfg"
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
SYSTEMS = ("numpy", "numpy-processes", "onnxruntime", "opencv", "torch")
MODES = ("steady", "idle")

Predict = Callable[[np.ndarray], np.ndarray]


def zoo_cfgs(spec: str | None) -> list[Path]:
    """The cfgs named in spec (comma-separated zoo names or .cfg paths), or the whole zoo."""
    if not spec:
        return sorted(ZOO.glob("*.cfg"))
    paths = [Path(item) if item.endswith(".cfg") else ZOO / f"{item}.cfg" for item in spec.split(",")]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise SystemExit(f"cpu_peers: no such cfg: {', '.join(missing)}")
    return paths


def load_systems(cfg: Path, workdir: Path, wanted: tuple[str, ...]) -> tuple[Graph, dict, dict]:
    """(graph, name -> (predict on an NCHW batch, version), name -> why it was skipped)."""
    graph = load_graph(cfg)
    raw = random_params(graph)
    systems: dict[str, tuple[Predict, str]] = {}
    skipped: dict[str, str] = {}
    if "numpy" in wanted:
        systems["numpy"] = (Network(graph, raw, registry().get("numpy")).predict, f"tdn numpy, numpy {np.__version__}")
    if "numpy-processes" in wanted:  # the opt-in mode: forked helper processes (--parallel processes)
        try:
            network = Network(graph, raw, registry().get("numpy"), parallel="processes")
            systems["numpy-processes"] = (network.predict, "tdn numpy --parallel processes")
        except TdnError as error:
            skipped["numpy-processes"] = str(error)
    if "onnxruntime" in wanted:
        try:
            import onnxruntime
        except ImportError:
            skipped["onnxruntime"] = "not installed (pip install 'tdn[onnx]')"
        else:
            onnx_path = workdir / "net.onnx"
            export_onnx(graph, fold_params(graph, raw), onnx_path)
            session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
            systems["onnxruntime"] = (lambda x: session.run(None, {"input": x})[0],
                                      f"onnxruntime {onnxruntime.__version__} (tdn's export)")
    if "opencv" in wanted:
        try:
            import cv2
        except ImportError:
            skipped["opencv"] = "not installed (pip install 'opencv-python-headless<5')"
        else:
            weights = workdir / "random.weights"
            write_weights(weights, graph, raw)
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # errors come as exceptions
            dnn = None
            try:
                dnn = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
                dnn.setInput(random_input(1, *graph.input_shape))
                dnn.forward()  # some cfgs it reads, it cannot run (the ResNets' shortcuts between shapes)
            except cv2.error as error:
                skipped["opencv"] = f"cannot run the cfg: {str(error).strip().splitlines()[-1]}"
            if "opencv" not in skipped:
                def opencv(x: np.ndarray) -> np.ndarray:
                    dnn.setInput(x)
                    return dnn.forward()
                systems["opencv"] = (opencv, f"opencv {cv2.__version__}")
    if "torch" in wanted:
        if "torch" in registry().names():
            systems["torch"] = (Network(graph, raw, registry().get("torch")).predict, "tdn-torch plugin")
        else:
            skipped["torch"] = "no torch backend plugin installed"
    return graph, systems, skipped


def differences_from_numpy(systems: dict, x: np.ndarray) -> dict[str, float | None]:
    """Each peer's largest absolute difference from the numpy backend's output on x."""
    if "numpy" not in systems:
        return {}
    want = systems["numpy"][0](x).reshape(len(x), -1)
    differences: dict[str, float | None] = {}
    for name, (predict, _) in systems.items():
        got = np.asarray(predict(x)).reshape(len(x), -1)
        differences[name] = float(np.abs(got - want).max()) if got.shape == want.shape else None
    return differences


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
    (measured here), and the numpy backend's helpers spin a few ms; without this wait,
    the system timed next in the round runs beside them.
    """
    children = child_processes()
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        before = cpu_seconds(children)
        time.sleep(window)
        if cpu_seconds(children) - before < 0.1 * window:
            return


def time_interleaved(systems: dict, x: np.ndarray, mode: str, args: argparse.Namespace) -> list[Timing]:
    """Every system timed on x in rounds, one call of each per round (see the module's docstring for
    the modes). args.warmup untimed rounds first; then args.runs rounds, more while the timed calls
    add up to less than args.min_seconds, fewer (at least 3) once the case has run args.max_seconds."""
    names = list(systems)
    for _ in range(args.warmup):
        for name in names:
            systems[name][0](x)
    times: dict[str, list[float]] = {name: [] for name in names}
    begin_case = time.perf_counter()
    rounds = 0
    while True:
        timed = sum(map(sum, times.values()))
        elapsed = time.perf_counter() - begin_case
        if rounds >= 3 and elapsed > args.max_seconds:
            break
        if rounds >= args.runs and (timed >= args.min_seconds or rounds >= 10 * args.runs):
            break
        for name in names[rounds % len(names):] + names[:rounds % len(names)]:
            predict = systems[name][0]
            settle()
            if mode == "steady":
                predict(x)
            else:
                time.sleep(args.idle_seconds)
            begin = time.perf_counter()
            predict(x)
            times[name].append(time.perf_counter() - begin)
        rounds += 1
    timings = []
    for name, seconds in times.items():
        ms = np.array(seconds) * 1000.0
        p25, median, p75 = np.percentile(ms, [25, 50, 75])
        timings.append(Timing(name, x.shape[0], x.shape[2], x.shape[3], len(ms), float(median), float(p25),
                              float(p75), float(ms.min()), None))
    return timings


def measure_cfg(cfg: Path, args: argparse.Namespace) -> tuple[list[dict], dict]:
    """The results of one cfg (one dict per system, batch and mode) and what was skipped."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        graph, systems, skipped = load_systems(cfg, Path(tmp), args.systems)
        c, height, width = graph.input_shape
        print(f"{cfg.name} ({width}x{height}, {graph.flops() / 1e9:.2f} GFLOP/image): "
              f"{', '.join(systems)}" + "".join(f"; {n} skipped: {why}" for n, why in skipped.items()), flush=True)
        differences = differences_from_numpy(systems, random_input(1, c, height, width, seed=1))
        for batch in args.batch:
            x = random_input(batch, c, height, width)
            for mode in args.modes:
                for timing in time_interleaved(systems, x, mode, args):
                    results.append({"cfg": cfg.stem, "mode": mode, "gflop_per_image": graph.flops() / 1e9}
                                   | timing.as_dict() | {"version": systems[timing.name][1],
                                                        "max_abs_difference_from_numpy": differences.get(timing.name)})
                    print(f"  {mode:<6} batch {batch:>3} {timing.name:<12} {timing.ms_per_image:8.2f} ms/image "
                          f"(median of {timing.runs}; per call: IQR {timing.p25_ms:.1f}-"
                          f"{timing.p75_ms:.1f} ms, min {timing.min_ms:.1f} ms)", flush=True)
        del systems
    gc.collect()  # the next cfg's systems should not share the memory with this one's
    return results, skipped


def ratios(results: list[dict]) -> list[dict]:
    """Per cfg, batch and mode: each system's median and minimum time over ONNX Runtime's."""
    rows = []
    cases = sorted({(r["cfg"], r["batch"], r["mode"]) for r in results},
                   key=lambda case: (case[0], case[1], MODES.index(case[2])))
    for cfg, batch, mode in cases:
        by_name = {r["name"]: r for r in results if (r["cfg"], r["batch"], r["mode"]) == (cfg, batch, mode)}
        peer = by_name.get("onnxruntime")
        if peer is None:
            continue
        rows.append({"cfg": cfg, "batch": batch, "mode": mode,
                     "median": {f"{n}/onnxruntime": r["median_ms"] / peer["median_ms"]
                                for n, r in by_name.items() if n != "onnxruntime"},
                     "minimum": {f"{n}/onnxruntime": r["min_ms"] / peer["min_ms"]
                                 for n, r in by_name.items() if n != "onnxruntime"}})
    return rows


def table(report: dict) -> str:
    """The report as Markdown: the machine and versions, then ms/image and ratios per mode."""
    versions = sorted({r["version"] for r in report["results"]})
    lines = [f"# cpu_peers {report['started']} ({report['label']})", "",
             f"`{report['command']}`", "",
             f"Machine: {report['machine']['cpu']}, {report['machine']['cores']} cores for this process, "
             f"{report['machine']['platform']}, Python {report['machine']['python']}; "
             f"load average {report['load_average_before']:.2f} before, {report['load_average_after']:.2f} after.",
             f"tdn {report['tdn_commit']}; " + "; ".join(versions) + ".",
             "BLAS: " + "; ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('threading_layer')}, "
                                   f"{p.get('num_threads')} threads"
                                   + (f", {p['architecture']} kernels)" if p.get("architecture") else ")")
                                   for p in report["threadpools"]) + ".", ""]
    for name, why in sorted(report["skipped"].items()):
        lines.append(f"Skipped: {name}: {why}")
    systems = [s for s in SYSTEMS if any(r["name"] == s for r in report["results"])]
    others = [s for s in systems if s != "onnxruntime"]
    for mode in MODES:
        rows = [r for r in report["results"] if r["mode"] == mode]
        if not rows:
            continue
        lines += ["", f"## {mode}: ms/image, median of the runs; ratios of medians to ONNX Runtime", "",
                  "| cfg | batch | " + " | ".join(systems) + " | " + " | ".join(f"{s} / ort" for s in others) + " |",
                  "|---|---:|" + "---:|" * (len(systems) + len(others))]
        for cfg, batch in sorted({(r["cfg"], r["batch"]) for r in rows}):
            case = {r["name"]: r for r in rows if (r["cfg"], r["batch"]) == (cfg, batch)}
            cells = [f"{case[s]['ms_per_image']:.2f}" if s in case else "-" for s in systems]
            peer = case.get("onnxruntime")
            cells += [f"**{case[s]['median_ms'] / peer['median_ms']:.2f}**" if peer and s in case else "-"
                      for s in others]
            lines.append(f"| {cfg} | {batch} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def tdn_commit() -> str:
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "(not a git checkout)"
    return commit


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write(path: Path, text: str) -> None:
    """The whole text or, if interrupted, the file as it was: written beside it, then renamed."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--cfg", help=f"comma-separated zoo names (in {ZOO}) or .cfg paths; default: every "
                                      f"cfg there")
    parser.add_argument("--batch", default="1,32", help="comma-separated batch sizes (default 1,32)")
    parser.add_argument("--modes", default="steady,idle", help="steady, idle or both (default steady,idle)")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help=f"which of {', '.join(SYSTEMS)} to time, where installed (default all)")
    parser.add_argument("--runs", type=int, default=20, help="timed rounds per case (default 20)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds before each case (default 1)")
    parser.add_argument("--min-seconds", type=float, default=2.0,
                        help="more rounds (up to 10x --runs) until the timed calls add up to this (default 2)")
    parser.add_argument("--max-seconds", type=float, default=90.0,
                        help="fewer rounds (at least 3) once a case has run this long (default 90)")
    parser.add_argument("--idle-seconds", type=float, default=0.5,
                        help="sleep before each call in idle mode (default 0.5)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="folder for the JSON and table")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.command = " ".join(["python", "benchmarks/cpu_peers.py", *sys.argv[1:]]).replace(" --child", "")
    args.cfgs = zoo_cfgs(args.cfg)
    args.batch = [int(b) for b in args.batch.split(",")]
    args.modes = tuple(args.modes.split(","))
    args.systems = tuple(args.systems.split(","))
    for value, known, what in ((args.modes, MODES, "mode"), (args.systems, SYSTEMS, "system")):
        unknown = set(value) - set(known)
        if unknown:
            parser.error(f"unknown {what}(s) {', '.join(sorted(unknown))} (known: {', '.join(known)})")
    return args


def main() -> int:
    args = parse_args()
    label = "openblas-unset" if args.child else "openblas-as-set"
    report: dict = {"label": label, "command": args.command, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                    "load_average_before": os.getloadavg()[0],
                    "openblas_environment": {name: os.environ.get(name) for name in OPENBLAS_VARIABLES},
                    "machine": {"cpu": cpu_model(), "cores": available_cores(), "platform": platform.platform(),
                                "python": platform.python_version()},
                    "tdn_commit": tdn_commit(), "settings": {k: getattr(args, k) for k in (
                        "batch", "modes", "systems", "runs", "warmup", "min_seconds", "max_seconds", "idle_seconds")},
                    "results": [], "skipped": {}}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"cpu_peers_{time.strftime('%Y%m%d-%H%M%S')}_{label}"
    for cfg in args.cfgs:
        try:
            results, skipped = measure_cfg(cfg, args)
        except Exception as error:  # one network's failure should not lose a long run
            print(f"{cfg.name}: failed: {error!r}", file=sys.stderr, flush=True)
            report["skipped"][cfg.stem] = f"failed: {error!r}"
            continue
        report["results"] += results
        report["skipped"] |= {f"{name} on {cfg.stem}": why for name, why in skipped.items()}
        # After every network, so that an interrupted run keeps what it measured.
        report |= {"threadpools": blas_info(), "load_average_after": os.getloadavg()[0],
                   "ratios": ratios(report["results"])}
        write(stem.with_suffix(".json"), json.dumps(report, indent=2) + "\n")
        write(stem.with_suffix(".md"), table(report))
    if not report["results"]:
        return 1
    print(table(report))
    print(f"wrote {stem}.json and {stem}.md")
    if not args.child and any(name in os.environ for name in OPENBLAS_VARIABLES):
        env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARIABLES}
        return subprocess.call([sys.executable, __file__, *sys.argv[1:], "--child"], env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
