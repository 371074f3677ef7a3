"""Darknet-exact decoding (tdn.decode) against Pillow on the same files, as time ratios.

Files: the 768x576 dog.jpg from ../shared, and a 4000x3000 JPEG made here at run time
(smooth random content, Pillow quality 90, 4:2:0; written to a temporary folder, never
kept). The two decoders alternate within every round; medians over the rounds.
Then where the time goes: each stage of the JPEG path (CPU time, steadier than wall time on
a shared machine) against Pillow's whole decode, alternated the same way.
Then `tdn classify DIR` throughput (tdn.network.predict_batches, numpy backend, Tiny
Darknet with random weights, letterbox, batch 8, 4 workers) over generated 640x480 JPEGs
with each decoder, alternated; Pillow is what tdn used before.

    python benchmarks/decode_speed.py [--rounds 7] [--images 32] [--out FILE]
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tdn.decode import DECODERS
from tdn.decode.colour import ycbcr_to_rgb
from tdn.decode.idct import idct_plane
from tdn.decode.jpeg import _planes
from tdn.decode.jpeg_coefficients import quantised_blocks
from tdn.decode.jpeg_header import parse
from tdn.graph import load_graph
from tdn.image import decode
from tdn.network import Network
from tdn.plugins import registry
from tdn.weights import random_params

REPO = Path(__file__).resolve().parent.parent
DOG = REPO.parent / "shared" / "darknet" / "images" / "dog.jpg"


def smooth_jpeg(path: Path, width: int, height: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(1, height // 40), max(1, width // 40), 3), dtype=np.uint8)
    Image.fromarray(small).resize((width, height), Image.BILINEAR).save(path, quality=90)


def decode_times(path: Path, rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in DECODERS}
    for name in DECODERS:
        decode(path, name)  # warm: imports, tables, page cache
    for _ in range(rounds):
        for name in DECODERS:
            start = time.perf_counter()
            decode(path, name)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def stage_times(path: Path, rounds: int) -> dict[str, float]:
    data = path.read_bytes()
    header = parse(data)
    blocks = quantised_blocks(data, header)
    planes = _planes(header, blocks)
    stages = {
        "pillow whole decode": lambda: np.asarray(Image.open(io.BytesIO(data)).convert("RGB")),
        "markers": lambda: parse(data),
        "coefficients (libjpeg)": lambda: quantised_blocks(data, header),
        "IDCT": lambda: [idct_plane(coefficients, quantiser) for coefficients, quantiser in blocks],
        "IDCT+upsampling": lambda: _planes(header, blocks),
        "colour": lambda: ycbcr_to_rgb(*planes),
    }
    times: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(rounds):
        for name, stage in stages.items():
            start = time.process_time()
            stage()
            times[name].append(time.process_time() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def classify_rates(paths: list[str], rounds: int) -> dict[str, float]:
    graph = load_graph(REPO / "cfg" / "tiny.cfg")
    net = Network(graph, random_params(graph, seed=1), registry().get("numpy"))
    rates: dict[str, list[float]] = {name: [] for name in DECODERS}
    for _ in range(rounds):
        for name in DECODERS:
            start = time.perf_counter()
            for _prediction in net.predict_batches(paths, batch=8, mode="letterbox", workers=4, decoder=name):
                pass
            rates[name].append(len(paths) / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = [f"tdn.decode vs Pillow {Image.__version__}: median of {args.rounds} alternated rounds; "
             f"{platform.processor() or platform.machine()}, {platform.python_version()}"]
    with tempfile.TemporaryDirectory() as folder:
        big = Path(folder) / "4000x3000.jpg"
        smooth_jpeg(big, 4000, 3000, seed=0)
        for label, path in (("dog.jpg 768x576 (4:4:0)", DOG), ("generated 4000x3000 (4:2:0, q90)", big)):
            t = decode_times(path, args.rounds)
            lines.append(f"decode {label}: darknet {t['darknet'] * 1e3:.1f} ms, pillow {t['pillow'] * 1e3:.1f} ms, "
                         f"ratio darknet/pillow {t['darknet'] / t['pillow']:.2f}")
            stages = stage_times(path, args.rounds)
            lines.append("  stages, CPU ms: " + ", ".join(f"{name} {value * 1e3:.1f}"
                                                       for name, value in stages.items()))
        paths = []
        for index in range(args.images):
            paths.append(str(Path(folder) / f"{index:03d}.jpg"))
            smooth_jpeg(Path(paths[-1]), 640, 480, seed=index + 1)
        r = classify_rates(paths, max(1, args.rounds // 2))
        lines.append(f"classify {args.images} JPEGs 640x480 (numpy, batch 8, 4 workers, letterbox): "
                     f"darknet {r['darknet']:.1f} img/s, pillow {r['pillow']:.1f} img/s, "
                     f"ratio darknet/pillow {r['darknet'] / r['pillow']:.2f}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
