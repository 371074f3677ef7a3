"""tdn export onnx: write a Darknet network as an ONNX model."""

from __future__ import annotations

import argparse
import sys

from tdn.files import check_output_path
from tdn.graph import load_graph
from tdn.onnx_export import export_onnx
from tdn.weights import fold_params, read_weights


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="export a network to another format",
        description="Export a Darknet cfg and weights file (batch-norm folded) to another format.")
    formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    onnx = formats.add_parser("onnx", help="ONNX (needs pip install 'tdn[onnx]')",
                              description="Write an ONNX model: input (batch, C, H, W) float32 "
                                          "as tdn preprocesses it, output (batch, classes). Height and "
                                          "width are free where Darknet can resize the network.")
    onnx.add_argument("cfg", help="Darknet .cfg file")
    onnx.add_argument("weights", help="Darknet .weights file")
    onnx.add_argument("out", help="the .onnx file to write")
    onnx.set_defaults(run=run, order="tdn export onnx CFG WEIGHTS OUT")


def run(args: argparse.Namespace) -> int:
    check_output_path(args.out, "ONNX file")
    graph = load_graph(args.cfg)
    _, raw = read_weights(args.weights, graph)
    export_onnx(graph, fold_params(graph, raw), args.out)
    print(f"tdn: wrote {args.out}", file=sys.stderr)
    return 0
