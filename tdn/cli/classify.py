"""tdn classify: the top classes of each image, printed the way Darknet prints them."""

from __future__ import annotations

import argparse
import sys
import time

from tdn.classes import names_from_data_file, read_names, top_k
from tdn.cli.options import positive_int
from tdn.errors import TdnError
from tdn.image import MODES, decode, preprocess_pixels
from tdn.network import load
from tdn.output import FORMATS, Result, write_result


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "classify", help="classify images",
        description="Classify images with a Darknet cfg and weights file and print the top "
                    "classes as Darknet does.")
    parser.add_argument("cfg", help="Darknet .cfg file")
    parser.add_argument("weights", help="Darknet .weights file")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--backend", default="auto",
                        help="backend name, or auto for the best available (default; see 'tdn backends')")
    parser.add_argument("--resize", choices=MODES, default="resize_min",
                        help="preprocessing: resize_min (Darknet 2016, default), letterbox "
                             "(today's darknet classify), stretch, crop")
    parser.add_argument("--top", type=positive_int, help="how many classes to print (default 5, "
                                                          "or the .data file's top)")
    names = parser.add_mutually_exclusive_group()
    names.add_argument("--names", metavar="FILE", help="class names, one per line")
    names.add_argument("--data", metavar="FILE", help="Darknet .data file naming the names list and top")
    parser.add_argument("--format", choices=FORMATS, default="darknet",
                        help="darknet: the 2016 format of the Tiny Darknet page (default); "
                             "darknet-master: today's '%%5.2f%%%%: name'; json: one object per line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    names, top = None, None
    if args.names:
        names = read_names(args.names)
    elif args.data:
        names, top = names_from_data_file(args.data)
    top = args.top or top or 5
    net = load(args.cfg, args.weights, args.backend)
    if names is not None and len(names) < net.classes:
        raise TdnError(f"{args.names or args.data}: {len(names)} class names for a network "
                       f"with {net.classes} outputs")
    for image in args.images:
        pixels = decode(image)
        x = preprocess_pixels(pixels, net.graph.net.width, net.graph.net.height, args.resize)
        start = time.perf_counter()
        probabilities = net.predict(x)
        seconds = time.perf_counter() - start
        write_result(Result(image, seconds, top_k(probabilities, top)), names, args.format)
    if names is None:
        print("tdn: printed class indices; pass --names FILE or --data FILE for names "
              "('tdn download tiny' fetches ImageNet's)", file=sys.stderr)
    return 0
