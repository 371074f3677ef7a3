"""Images/s of tdn's batched pipeline for 1, 4 and 16 decode workers.

Two measurements over the same generated JPEGs (640x480, like photos):
- decode + preprocess only (tdn.pipeline.prepared), the part the worker threads do;
- end to end with Tiny Darknet (random weights) on the chosen backend, --batch 8, letterbox.
The 0-worker run (everything in the calling thread) is the peer each ratio refers to.

    python benchmarks/pipeline_throughput.py [--images 48] [--backend numpy] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tdn.graph import load_graph
from tdn.network import Network
from tdn.pipeline import prepared
from tdn.plugins import registry
from tdn.weights import random_params

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
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
