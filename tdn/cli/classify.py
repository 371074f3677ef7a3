"""tdn classify: the top classes of each image, printed the way Darknet prints them."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from PIL import Image
from tqdm import tqdm

from tdn.classes import names_from_data_file, read_names, top_k
from tdn.cli.options import positive_int
from tdn.decode import DECODERS
from tdn.errors import TdnError, one_line
from tdn.files import check_output_path
from tdn.image import DEFAULT_MAX_PIXELS, MODES
from tdn.network import load
from tdn.output import FORMATS, Result, atomic_output, write_header, write_result, write_skipped
from tdn.pipeline import expand_inputs, read_list


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "classify", help="classify images",
        description="Classify images with a Darknet cfg and weights file and print the top "
                    "classes as Darknet does.")
    parser.add_argument("cfg", help="Darknet .cfg file")
    parser.add_argument("weights", help="Darknet .weights file")
    parser.add_argument("images", nargs="*", metavar="IMAGE",
                        help="image files (JPEG, PNG, ...), directories (searched recursively for "
                             "image extensions) or glob patterns such as 'photos/**/*.jpg'")
    parser.add_argument("--list", metavar="FILE",
                        help="read image paths from FILE, one per line ('-': standard input)")
    add_input_options(parser)
    parser.add_argument("--top", type=positive_int, help="how many classes to print (default 5, "
                                                          "or the .data file's top)")
    names = parser.add_mutually_exclusive_group()
    names.add_argument("--names", metavar="FILE", help="class names, one per line")
    names.add_argument("--data", metavar="FILE", help="Darknet .data file naming the names list and top")
    parser.add_argument("--format", choices=FORMATS, default="darknet",
                        help="darknet: the 2016 format of the Tiny Darknet page (default); "
                             "darknet-master: today's '%%5.2f%%%%: name'; json: one object per line; "
                             "jsonl: like json, plus a record for each skipped image; "
                             "csv: image,rank,index,name,probability,error")
    parser.add_argument("--output", metavar="FILE",
                        help="write results to FILE (replaced only once all images are done) "
                             "instead of standard output")
    parser.set_defaults(run=run, trailing_positional="images",
                        order="tdn classify [options] CFG WEIGHTS IMAGE...")


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """Options shared with tdn valid: backend, preprocessing, batching, unreadable images."""
    parser.add_argument("--backend", default="auto",
                        help="backend name, or auto for the best available (default; see 'tdn backends')")
    parser.add_argument("--precision",
                        help="arithmetic: fp32 (default), or another the backend offers, such as "
                             "tf32 or fp16 for cuda (see 'tdn backends')")
    parser.add_argument("--resize", choices=MODES, default="resize_min",
                        help="preprocessing: resize_min (Darknet 2016, default), letterbox "
                             "(today's darknet classify), stretch, crop")
    parser.add_argument("--batch", type=positive_int, default=1,
                        help="images per backend call (default 1). In resize_min mode a batch holds "
                             "consecutive images of the same resized shape: a shape change starts "
                             "a new batch")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="threads decoding and preprocessing ahead of the backend "
                             "(default min(4, CPUs); 0: in the main thread)")
    parser.add_argument("--decoder", choices=DECODERS, default="darknet",
                        help="darknet: decode JPEG, PNG and BMP to exactly the pixels Darknet's "
                             "stb_image gives (default; other files go to Pillow with a warning); "
                             "pillow: Pillow's libjpeg-turbo, faster, JPEG pixels a few levels off. "
                             "Both ignore EXIF orientation, as Darknet does")
    add_parallel_option(parser)
    parser.add_argument("--strict", action="store_true",
                        help="stop with exit status 1 at the first unreadable image "
                             "(default: report it on stderr, skip it and go on)")
    parser.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help="skip, as unreadable, an image of more than N pixels, or one whose "
                             f"preprocessing would make an array of more (default {DEFAULT_MAX_PIXELS})")


def add_parallel_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parallel", metavar="MODE",
                        help="how the backend uses the other cores: for numpy, threads (default) or "
                             "processes (forked helpers that spin between calls; Linux x86-64; see "
                             "README). Default: $TDN_PARALLEL, else the backend's own")


def image_paths(args: argparse.Namespace) -> list[str]:
    items = list(args.images)
    if args.list:
        items += read_list(args.list)
    if not items:
        raise TdnError("no images given: pass IMAGE arguments, directories, patterns or --list FILE")
    paths = expand_inputs(items)
    if not paths:
        raise TdnError(f"no images found in {', '.join(items)}")
    return paths


def progress(total: int, batch: int) -> tqdm:
    """A bar on stderr when there is more than one batch and a person is watching."""
    return tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True,
                disable=total <= batch or not sys.stderr.isatty())


def check_input_options(args: argparse.Namespace) -> None:
    if args.workers < 0:
        raise TdnError(f"--workers must be 0 or more, got {args.workers}")
    # Our own message names the image; Pillow's warning about the same image would not.
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def run(args: argparse.Namespace) -> int:
    check_output_path(args.output, "--output")
    check_input_options(args)
    names, top = None, None
    if args.names:
        names = read_names(args.names)
    elif args.data:
        names, top = names_from_data_file(args.data)
    top = args.top or top or 5
    paths = image_paths(args)
    net = load(args.cfg, args.weights, args.backend, args.precision, args.parallel)
    if names is not None and len(names) < net.classes:
        raise TdnError(f"{args.names or args.data}: {len(names)} class names for a network "
                       f"with {net.classes} outputs")
    classified = skipped = 0
    with atomic_output(args.output) as out, progress(len(paths), args.batch) as bar:
        write_header(args.format, out)
        for prediction in net.predict_batches(paths, args.batch, args.resize, args.workers, args.strict,
                                              args.decoder, args.max_pixels):
            if prediction.error is None:
                assert prediction.probabilities is not None  # exactly one of the two is set
                classified += 1
                result = Result(prediction.source, prediction.seconds,
                                top_k(prediction.probabilities, top))
                write_result(result, names, args.format, out)
            else:
                skipped += 1
                bar.write(f"tdn: skipped {one_line(prediction.error)}", file=sys.stderr)
                write_skipped(prediction.source, prediction.error, args.format, out)
            bar.update()
    print(f"tdn: classified {classified} image{'s' * (classified != 1)}, skipped {skipped} "
          f"unreadable", file=sys.stderr)
    if names is None:
        print("tdn: printed class indices; pass --names FILE or --data FILE for names "
              "('tdn download tiny' fetches ImageNet's)", file=sys.stderr)
    # Skipped images were reported above; the exit status must not hide them.
    return 1 if skipped else 0
