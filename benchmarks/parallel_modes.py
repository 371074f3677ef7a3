"""The numpy backend in each parallel mode (threads, processes) against ONNX Runtime, in one run.

For each cfg and batch: the three systems timed in alternation (cpu_peers.time_interleaved,
calls back to back), random weights; prints ms per image and the ratios to ONNX Runtime, and
writes them as JSON to benchmarks/results/. A cfg that tdn cannot export yet is timed without
the ONNX Runtime peer.

    python benchmarks/parallel_modes.py [--cfg A.cfg,B.cfg] [--batch 1,32] [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from cpu_peers import REPO, time_interleaved

from tdn.bench import random_input
from tdn.errors import TdnError
from tdn.graph import load_graph
from tdn.network import Network
from tdn.onnx_export import export_onnx
from tdn.plugins import registry
from tdn.weights import fold_params, random_params
from tdn.backends.numpy.team import PROCESSES_AVAILABLE


def systems(cfg: Path, workdir: Path) -> tuple:
    graph = load_graph(cfg)
    raw = random_params(graph)
    found = {}
    for mode in ("threads", "processes") if PROCESSES_AVAILABLE else ("threads",):
        net = Network(graph, raw, registry().get("numpy"), parallel=mode)
        found[f"numpy/{mode}"] = (net.predict, mode)
    try:
        import onnxruntime

        path = workdir / "net.onnx"
        export_onnx(graph, fold_params(graph, raw), path)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        found["onnxruntime"] = (lambda x: session.run(None, {"input": x})[0], onnxruntime.__version__)
    except (ImportError, TdnError) as error:
        print(f"  {cfg.name}: no ONNX Runtime peer ({error})", file=sys.stderr)
    return graph, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfg", default=str(REPO / "cfg" / "tiny.cfg"), help="comma-separated cfg files")
    parser.add_argument("--batch", default="1,32")
    parser.add_argument("--runs", type=int, default=20, help="timed runs at batch 1 (fewer for bigger batches)")
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    rows = []
    for cfg in args.cfg.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            graph, found = systems(Path(cfg), Path(tmp))
            for batch in (int(b) for b in args.batch.split(",")):
                x = random_input(batch, graph.net.channels, graph.net.height, graph.net.width)
                runs = max(5, args.runs // batch) if batch > 1 else args.runs
                timings = {t.name: t.ms_per_image for t in time_interleaved(found, x, runs, args.min_seconds)}
                peer = timings.get("onnxruntime")
                row = {"cfg": Path(cfg).name, "batch": batch, "ms_per_image": timings,
                       "ratio_to_onnxruntime": {k: v / peer for k, v in timings.items() if peer and k != "onnxruntime"}}
                rows.append(row)
                print(f"{row['cfg']:<18} batch {batch:>2}: "
                      + ", ".join(f"{k} {v:.2f} ms" for k, v in timings.items()) + "; "
                      + ", ".join(f"{k}/ort {v:.2f}" for k, v in row["ratio_to_onnxruntime"].items()), flush=True)
            for function, _ in found.values():
                getattr(getattr(function, "__self__", None), "close", lambda: None)()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"parallel_modes_{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
