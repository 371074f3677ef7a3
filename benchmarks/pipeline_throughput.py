"""Images/s of tdn's batched pipeline for 1, 4 and 16 decode workers, and `tdn classify` against
`tdn bench`.

Two measurements over the same generated JPEGs (640x480, like photos):
- decode + preprocess only (tdn.pipeline.prepared), the part the worker threads do;
- end to end with Tiny Darknet (random weights) on the chosen backend, --batch 8, letterbox.
The 0-worker run (everything in the calling thread) is the peer each ratio refers to.

With --versus-bench CFG[,CFG...]: `tdn classify DIR --batch B --resize letterbox` over --images
JPEGs (load, decode, preprocess and compute, timed from the command's start to its end, in this
process) against the images/s of `tdn bench --batch B` for the same network at the same input size,
alternated --rounds times; the ratio is classify's median images/s over bench's. --decoder
pillow runs classify with Pillow's decoder instead of tdn's default (Darknet's pixels).

    python benchmarks/pipeline_throughput.py [--images 48] [--backend numpy] [--out FILE]
    python benchmarks/pipeline_throughput.py --versus-bench cfg/tiny.cfg --images 256 --batch 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tdn.cli import main as cli
from tdn.decode import DECODERS
from tdn.graph import load_graph
from tdn.network import Network
from tdn.pipeline import prepared
from tdn.plugins import registry
from tdn.weights import random_params, write_weights

REPO = Path(__file__).resolve().parent.parent
WORKERS = (0, 1, 4, 16)


def make_images(folder: Path, count: int) -> list[str]:
    rng = np.random.default_rng(0)
    # Smooth random images compress like photos; pure noise would make JPEG decoding unusually slow.
    base = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    paths = []
    for index in range(count):
        image = Image.fromarray(np.roll(base, index, axis=1)).resize((640, 480), Image.BILINEAR)
        path = folder / f"{index:04d}.jpg"
        image.save(path, quality=90)
        paths.append(str(path))
    return paths


def rate(count: int, run) -> float:
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def versus_bench(cfgs: list[str], count: int, batch: int, rounds: int, parallel: str | None,
                 decoder: str | None) -> list[str]:
    """classify's images/s over bench's, per cfg (see the module docstring)."""
    extra = ["--parallel", parallel] if parallel else []
    decoding = ["--decoder", decoder] if decoder else []
    lines = [f"tdn classify DIR ({count} JPEGs 640x480, letterbox, {decoder or 'default'} decoder) against tdn "
             f"bench, batch {batch}, numpy backend{' in ' + parallel + ' mode' if parallel else ''}, median of "
             f"{rounds} alternated runs",
             "", f"{'cfg':<18} {'classify img/s':>14} {'bench img/s':>11} {'ratio':>6}"]
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory() as work:
        make_images(Path(folder), count)
        for cfg in cfgs:
            graph = load_graph(cfg)
            weights = Path(work) / "random.weights"
            write_weights(weights, graph, random_params(graph, seed=1))
            out, report = Path(work) / "out.txt", Path(work) / "bench.json"
            classify, bench = [], []
            for _ in range(rounds):
                start = time.perf_counter()
                assert cli(["classify", cfg, str(weights), folder, "--batch", str(batch), "--resize",
                            "letterbox", "--backend", "numpy", "--output", str(out), *extra, *decoding]) == 0
                classify.append(count / (time.perf_counter() - start))
                assert cli(["bench", cfg, "--backend", "numpy", "--batch", str(batch), "--size",
                            f"{graph.net.width}x{graph.net.height}", "--runs", str(max(3, count // batch // 4)),
                            "--json", str(report), *extra]) == 0
                bench.append(json.loads(report.read_text())["results"][0]["images_per_second"])
            lines.append(f"{Path(cfg).name:<18} {np.median(classify):14.1f} {np.median(bench):11.1f} "
                         f"{np.median(classify) / np.median(bench):6.2f}")
            print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--versus-bench", metavar="CFGS", help="comma-separated cfg files")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parallel", help="the numpy backend's parallel mode (default: its own)")
    parser.add_argument("--decoder", choices=DECODERS,
                        help="with --versus-bench: classify's image decoder (default: tdn's own default)")
    args = parser.parse_args()
    if args.versus_bench:
        text = "\n".join(versus_bench(args.versus_bench.split(","), args.images, args.batch, args.rounds,
                                      args.parallel, args.decoder)) + "\n"
        if args.out:
            args.out.write_text(text)
        return
    graph = load_graph(REPO / "cfg" / "tiny.cfg")
    net = Network(graph, random_params(graph, seed=1), registry().get(args.backend))
    lines = [f"tdn pipeline throughput: {args.images} JPEGs 640x480, Tiny Darknet (random weights), "
             f"backend {args.backend}, letterbox 224x224",
             f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
             f"Python {platform.python_version()}",
             "", f"{'workers':>7}  {'decode+preprocess img/s':>23}  {'ratio':>5}  "
                 f"{'end-to-end img/s (batch 8)':>26}  {'ratio':>5}"]
    with tempfile.TemporaryDirectory() as folder:
        paths = make_images(Path(folder), args.images)
        net.predict_batches(paths[:8], batch=8, mode="letterbox", workers=0).__next__()  # warm-up
        peer_decode = peer_e2e = None
        for workers in WORKERS:
            decode = rate(len(paths), lambda w=workers: list(prepared(paths, 224, 224, "letterbox", w)))
            e2e = rate(len(paths), lambda w=workers: list(
                net.predict_batches(paths, batch=8, mode="letterbox", workers=w)))
            peer_decode, peer_e2e = peer_decode or decode, peer_e2e or e2e
            lines.append(f"{workers:7d}  {decode:23.1f}  {decode / peer_decode:5.2f}  "
                         f"{e2e:26.1f}  {e2e / peer_e2e:5.2f}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
