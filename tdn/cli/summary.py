"""tdn summary: Darknet's layer table for a cfg, at its own or another input size."""

from __future__ import annotations

import argparse

from tdn.cli.options import parse_size
from tdn.graph import load_graph


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("summary", help="print a cfg's layer table and BFLOPs",
                                   description="Print Darknet's layer table (layer, filters, size, "
                                               "input, output) and the total BFLOPs.")
    parser.add_argument("cfg", help="Darknet .cfg file")
    parser.add_argument("--size", type=parse_size, metavar="WxH",
                        help="input width x height instead of the cfg's (e.g. 298x224)")
    parser.set_defaults(run=run, order="tdn summary [--size WxH] CFG")


def run(args: argparse.Namespace) -> int:
    graph = load_graph(args.cfg)
    if args.size:
        graph = graph.resized(args.size[1], args.size[0])
    print(graph.summary())
    return 0
