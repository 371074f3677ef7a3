"""The roofline model of tdn/perf_model.py, printed: per network, batch, GPU and precision.

    python benchmarks/perf_model.py                      # Tiny Darknet, batches 1,8,64,256
    python benchmarks/perf_model.py --cfg ../shared/darknet/cfg/*.cfg --layers

Prints the figures it uses, then for each cfg a summary (FLOPs, bytes, roofline, launch and
transfer floors, predicted host-to-host time and images/s, the dominant layer) and the issue's
targets; with --layers, each layer's row at each batch size. Kernel launches are grouped as the
CUDA backend's plan groups them (one step, one launch). Needs no GPU.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tdn.backends.cuda.plan import build_plan

from tdn.errors import CfgError
from tdn.gpu_specs import GPUS, GRAPH_LAUNCH_S, GRAPH_NODE_S, STREAM_LAUNCH_S, GpuSpec
from tdn.graph import Graph, load_graph
from tdn.perf_model import (
    INPUT_BYTES,
    PRECISIONS,
    TARGET_BATCH1_S,
    TARGET_IMAGES_PER_S,
    Prediction,
    predict,
)

REPO = Path(__file__).resolve().parent.parent
UPLOADS = tuple(INPUT_BYTES)  # float32 (today), uint8 (planned)


def comma_list(known: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = text.split(",")
        unknown = [item for item in items if item not in known]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)} (known: {', '.join(known)})")
        return items
    return parse


def batch_list(text: str) -> list[int]:
    try:
        batches = [int(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch sizes must be integers, got {text!r}") from None
    if any(batch < 1 for batch in batches):
        raise argparse.ArgumentTypeError(f"batch sizes must be positive, got {text!r}")
    return batches


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfg", type=Path, nargs="+", default=[REPO / "cfg/tiny.cfg"])
    parser.add_argument("--batch", type=batch_list, default=[1, 8, 64, 256],
                        help="comma-separated batch sizes (default 1,8,64,256)")
    parser.add_argument("--gpu", type=comma_list(tuple(GPUS)), default=list(GPUS),
                        help=f"comma-separated, of {', '.join(GPUS)} (default: all)")
    parser.add_argument("--precision", type=comma_list(PRECISIONS), default=list(PRECISIONS),
                        help=f"comma-separated, of {', '.join(PRECISIONS)} (default: all)")
    parser.add_argument("--layers", action="store_true", help="also print every layer's row")
    return parser.parse_args(argv)


def launches(graph: Graph, batch: int) -> list[tuple[int, ...]]:
    return [tuple(node.index for node in step.nodes) for step in build_plan(graph, batch).steps]


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f}"


def figures(gpus: Sequence[GpuSpec]) -> list[str]:
    lines = ["Figures (tdn/gpu_specs.py, cited there; dense peaks, no sparsity):"]
    for gpu in gpus:
        peaks = ", ".join(f"{name} {flops / 1e12:.1f}" for name, flops in gpu.peak_flops.items())
        lines.append(f"  {gpu.name}: TFLOPS {peaks}; memory {gpu.memory_bandwidth / 1e12:.2f} TB/s; "
                     f"{gpu.host_link} {gpu.host_link_bandwidth / 1e9:.0f} GB/s each way")
    lines.append(f"  CUDA graph: {us(GRAPH_LAUNCH_S)} us per replay + {us(GRAPH_NODE_S)} us per node "
                 f"(kernel or copy); without a graph {us(STREAM_LAUNCH_S)} us per kernel launch")
    return lines


def summary(graph: Graph, predictions: list[Prediction]) -> list[str]:
    header = (f"{'batch':>5} {'gpu':<8} {'prec':<4} {'GFLOP':>9} {'MB moved':>9} {'roofline us':>11} "
              f"{'kernels':>7} {'launch us':>9} {'transfer us f32/u8':>18} {'host-to-host us f32/u8':>22} "
              f"{'images/s f32/u8':>19} {'streamed f32/u8':>19}  dominant layer (share of roofline)")
    lines = [header]
    for p in predictions:
        top = p.dominant()
        share = top.roofline_s(p.gpu, p.precision) / p.roofline_s if p.roofline_s else 0.0
        transfer = "/".join(us(p.transfer_floor_s(upload)) for upload in UPLOADS)
        total = "/".join(us(p.host_to_host_s(upload)) for upload in UPLOADS)
        rate = "/".join(f"{p.images_per_s(upload):,.0f}" for upload in UPLOADS)
        streamed = "/".join(f"{p.streamed_images_per_s(upload):,.0f}" for upload in UPLOADS)
        lines.append(
            f"{p.batch:>5} {p.gpu.name.split()[0]:<8} {p.precision:<4} {p.flops / 1e9:>9.2f} "
            f"{p.bytes / 1e6:>9.2f} {us(p.roofline_s):>11} {p.kernels:>7} {us(p.launch_floor_s):>9} "
            f"{transfer:>18} {total:>22} {rate:>19} {streamed:>19}  "
            f"{top.node.index} {top.node.kind} {top.bound(p.gpu, p.precision)} ({share:.0%})")
    return lines


def targets(predictions: list[Prediction]) -> list[str]:
    lines = []
    for p in predictions:
        if p.batch == 1:
            total = p.host_to_host_s("uint8")
            verdict = "within" if total <= TARGET_BATCH1_S else "over"
            lines.append(f"  batch 1, {p.gpu.name}, {p.precision}: {us(total)} us host-to-host with uint8 "
                         f"upload ({us(p.host_to_host_s('float32'))} with float32): {verdict} the "
                         f"{us(TARGET_BATCH1_S)} us target")
        if p.batch == 256 and p.precision == "fp16" and p.gpu is GPUS["h100"]:
            for upload in UPLOADS:
                one, streamed = p.images_per_s(upload), p.streamed_images_per_s(upload)
                verdict = "meets" if streamed >= TARGET_IMAGES_PER_S else "misses"
                lines.append(f"  batch 256, H100, fp16, {upload} upload: {streamed:,.0f} images/s streamed, "
                             f"{one:,.0f} one forward at a time: streamed {verdict} the "
                             f"{TARGET_IMAGES_PER_S:,} target")
    return lines


def layer_table(graph: Graph, batch: int, gpus: Sequence[GpuSpec], precisions: Sequence[str]) -> list[str]:
    by_precision = {precision: predict(graph, batch, precision, GPUS["h100"], launches(graph, batch))
                    for precision in PRECISIONS}
    times = [(gpu, precision) for gpu in gpus for precision in precisions]
    columns = " ".join(f"{gpu.name.split()[0] + ' ' + precision:>11}" for gpu, precision in times)
    lines = [f"-- batch {batch}: time in us per layer, c = compute-bound, m = memory-bound",
             f"{'layer':>5} {'kind':<13} {'output':<14} {'GFLOP':>8} {'MB fp32':>8} {'MB fp16':>8} "
             f"{'F/B fp32':>8} {'F/B fp16':>8} {columns}"]
    for index, node in enumerate(graph.nodes):
        fp32, fp16 = by_precision["fp32"].layers[index], by_precision["fp16"].layers[index]
        cells = []
        for gpu, precision in times:
            row = by_precision[precision].layers[index]
            bound = row.bound(gpu, precision)[0] if row.bytes else " "
            cells.append(f"{us(row.roofline_s(gpu, precision)) + bound:>11}")
        shape = "x".join(str(d) for d in node.out_shape)
        lines.append(f"{node.index:>5} {node.kind:<13} {shape:<14} {fp32.flops / 1e9:>8.3f} "
                     f"{fp32.bytes / 1e6:>8.3f} {fp16.bytes / 1e6:>8.3f} {fp32.intensity:>8.1f} "
                     f"{fp16.intensity:>8.1f} {' '.join(cells)}")
    return lines


def report(args: argparse.Namespace) -> list[str]:
    gpus = [GPUS[name] for name in args.gpu]
    lines = figures(gpus)
    for cfg in args.cfg:
        graph = load_graph(cfg)
        c, h, w = graph.input_shape
        predictions = [predict(graph, batch, precision, gpu, launches(graph, batch))
                       for batch in args.batch for gpu in gpus for precision in args.precision]
        lines += ["", f"== {cfg.name}: {w}x{h}x{c} input, {graph.flops() / 1e9:.3f} BFLOPs per image, "
                  f"{predictions[0].kernels} kernels per forward ==", *summary(graph, predictions)]
        checks = targets(predictions)
        if checks:
            lines += ["Targets (issue 19 sets them for Tiny Darknet):", *checks]
        if args.layers:
            for batch in args.batch:
                lines += layer_table(graph, batch, gpus, args.precision)
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        lines = report(args)
    except (CfgError, OSError) as error:
        print(f"perf_model: {error}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
