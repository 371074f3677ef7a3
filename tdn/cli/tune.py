"""tdn tune: time every conv.cu variant on every convolution of some networks, on this GPU, and
write the table the CUDA backend's plan reads (tdn.backends.cuda.tuning)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from tdn.cli.bench import batch_list
from tdn.cli.options import parse_size, positive_int
from tdn.errors import BackendError, TdnError
from tdn.graph import load_graph


def precision_list(text: str) -> list[str]:
    from tdn.backends.cuda.kernels import CONV_ENTRY

    names = text.split(",")
    unknown = [name for name in names if name not in CONV_ENTRY]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown precision(s) {', '.join(unknown)} "
                                         f"(known: {', '.join(CONV_ENTRY)})")
    return names


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "tune", help="time the CUDA kernel variants and keep the fastest per layer shape",
        description="Time every variant of the CUDA convolution kernel on every convolution shape of "
                    "the given networks at each batch size and precision, and write a table keyed by "
                    "GPU name and shape that the cuda backend reads from then on. With "
                    "TDN_CUDA_INTERPRET=1 it runs interpreted on the CPU: the table is marked "
                    "as interpreted and only the interpreter reads it.")
    parser.add_argument("cfgs", nargs="+", metavar="CFG", help="Darknet .cfg files whose convolutions to time")
    parser.add_argument("--backend", required=True, choices=["cuda"], help="the backend to tune (cuda)")
    parser.add_argument("--batch", type=batch_list, default=[1, 8, 64, 256],
                        help="batch sizes, like 1,64,256 (default 1,8,64,256)")
    parser.add_argument("--precision", type=precision_list, default=["fp32", "tf32", "fp16"],
                        help="precisions, like fp32,fp16 (default fp32,tf32,fp16)")
    parser.add_argument("--size", type=parse_size, help="input WIDTHxHEIGHT of every network (default: each cfg's)")
    parser.add_argument("--repeats", type=positive_int, default=20,
                        help="at most this many timed launches per variant and shape (default 20)")
    parser.add_argument("--output", type=Path,
                        help="the table to write (default: the user's tuned folder, "
                             "$TDN_TUNED_DIR or ~/.cache/tdn/tuned, named after the GPU)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tdn.backends.cuda import measure, tuning
    from tdn.backends.cuda.backend import cuda_unavailable_reason
    from tdn.backends.cuda.device import device

    graphs = [load_graph(path) for path in args.cfgs]
    if args.size:
        graphs = [graph.resized(args.size[1], args.size[0]) for graph in graphs]
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise BackendError(f"cannot tune the cuda backend: {reason}")
    gpu = device().name()
    interpreted = device().interpreted
    if interpreted:
        print("tdn: warning: interpret mode: these times are CPU times of the interpreter, not a GPU's",
              file=sys.stderr)
    shapes = measure.conv_shapes(graphs, args.batch, args.precision)
    output = args.output or tuning.tuned_dir() / tuning.table_filename(gpu)

    def progress(done: int, total: int, key: str) -> None:
        print(f"[{done + 1}/{total}] {key}", file=sys.stderr)

    times = measure.measure(shapes, args.repeats, progress)
    table = tuning.Table(gpu, interpreted, datetime.now(timezone.utc).isoformat(timespec="seconds"), times)
    try:
        tuning.write_table(table, output)
    except OSError as error:
        raise TdnError(f"{output}: cannot write: {error.strerror or error}") from None
    best = table.best()
    print(f"{'shape':<48} {'best':<12} {'us':>10} {'rule':<12} {'rule us':>10}")
    for key, (geo, precision) in shapes.items():
        rule = tuning.rule_choice(geo, precision).name
        print(f"{key:<48} {best[key]:<12} {times[key][best[key]]:>10.1f} {rule:<12} {times[key][rule]:>10.1f}")
    agree = sum(best[key] == tuning.rule_choice(geo, precision).name for key, (geo, precision) in shapes.items())
    print(f"{gpu}: {len(shapes)} shapes, the rule's choice is the fastest on {agree}; table written to {output}")
    return 0
