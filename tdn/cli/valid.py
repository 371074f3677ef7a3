"""tdn valid: top-1 and top-5 accuracy of a network over labelled images."""

from __future__ import annotations

import argparse
import sys
import time

from tdn.classes import read_names
from tdn.cli.classify import add_input_options, check_input_options, progress
from tdn.errors import TdnError, one_line
from tdn.network import load
from tdn.pipeline import expand_inputs, read_list, read_list_text
from tdn.validation import RULES, ClassIndex, Tally, darknet_rule, from_csv, from_folders, from_parent_folders

MAX_AMBIGUOUS_SHOWN = 5


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "valid", help="top-1/top-5 accuracy over labelled images",
        description="Classify labelled images and print top-1 and top-5 accuracy, per-class counts "
                    "and images/s. Labels come from a CSV list (path,class), from folder names "
                    "(DIR/<class>/...), or with --label-rule darknet from the first label name "
                    "contained in each path, as Darknet's 'classifier valid' does.")
    parser.add_argument("cfg", help="Darknet .cfg file")
    parser.add_argument("weights", help="Darknet .weights file")
    parser.add_argument("dir", nargs="?", metavar="DIR", help="a folder of DIR/<class>/ image folders")
    parser.add_argument("--labels", required=True, metavar="LABELS",
                        help="label names, one per line; line i is class i")
    parser.add_argument("--list", metavar="FILE",
                        help="the images: CSV rows 'path,class' (class: label name or index), or "
                             "one path per line with --label-rule folder or darknet ('-': stdin)")
    parser.add_argument("--label-rule", choices=RULES,
                        help="csv (default with --list), folder (default with DIR; with --list: "
                             "each image's parent folder), darknet (first label name in the path)")
    add_input_options(parser)
    parser.set_defaults(run=run, trailing_positional="dir",
                        order="tdn valid [options] CFG WEIGHTS DIR")


def labelled_images(args: argparse.Namespace, names: list[str]) -> list[tuple[str, int]]:
    if (args.dir is None) == (args.list is None):
        raise TdnError("give either DIR or --list FILE")
    rule = args.label_rule or ("csv" if args.list else "folder")
    classes = ClassIndex(names)
    if args.dir is not None:
        if rule == "csv":
            raise TdnError("--label-rule csv needs --list FILE")
        if rule == "folder":
            return from_folders(args.dir, classes)
        paths = expand_inputs([args.dir])
    elif rule == "csv":
        return from_csv(args.list, read_list_text(args.list), classes)
    else:
        paths = read_list(args.list)
        if rule == "folder":
            return from_parent_folders(paths, classes)
    labelled, unmatched, ambiguous = darknet_rule(paths, names)
    for path in unmatched:
        print(f"tdn: skipped {one_line(path)}: no label name occurs in the path", file=sys.stderr)
    args.unlabelled = len(unmatched)
    if ambiguous:
        print(f"tdn: warning: darknet label rule: {len(ambiguous)} of {len(paths)} paths contain more "
              f"than one label name; each takes the first", file=sys.stderr)
        for case in ambiguous[:MAX_AMBIGUOUS_SHOWN]:
            found = ", ".join(f"'{names[i]}' ({i})" for i in case.matches)
            print(f"tdn:   {one_line(case.path)}: {found} -> {case.matches[0]}", file=sys.stderr)
    return labelled


def run(args: argparse.Namespace) -> int:
    check_input_options(args)
    net = load(args.cfg, args.weights, args.backend, args.precision, args.parallel)
    names = read_names(args.labels)
    if len(names) < net.classes:
        raise TdnError(f"{args.labels}: {len(names)} labels for a network with {net.classes} outputs")
    # Like Darknet, only the network's classes count: ImageNet's lists hold more names.
    names = names[:net.classes]
    labelled = labelled_images(args, names)
    if not labelled:
        raise TdnError("no labelled images found")
    tally = Tally(net.classes)
    skipped = 0
    start = time.perf_counter()
    with progress(len(labelled), args.batch) as bar:
        predictions = net.predict_batches([path for path, _ in labelled], args.batch, args.resize,
                                          args.workers, args.strict, args.decoder, args.max_pixels)
        for prediction in predictions:
            if prediction.ok:
                assert prediction.probabilities is not None  # ok: the error is unset, the probabilities set
                tally.add(labelled[prediction.index][1], prediction.probabilities)
            else:
                skipped += 1
                bar.write(f"tdn: skipped {one_line(prediction.error)}", file=sys.stderr)
            bar.update()
    seconds = time.perf_counter() - start
    top1, top5 = tally.accuracy()
    print(f"images: {tally.total}  top-1: {top1:.4f}  top-5: {top5:.4f}  "
          f"images/s: {tally.total / seconds:.1f}")
    print(f"{'class':>5}  {'images':>6}  {'top-1':>6}  {'top-5':>6}  name")
    for index in map(int, tally.images.nonzero()[0]):
        print(f"{index:5d}  {tally.images[index]:6d}  {tally.top1[index]:6d}  {tally.top5[index]:6d}  "
              f"{names[index]}")
    unlabelled = getattr(args, "unlabelled", 0)
    print(f"tdn: validated {tally.total} image{'s' * (tally.total != 1)}, skipped {skipped} unreadable"
          + (f" and {unlabelled} unlabelled" if unlabelled else ""), file=sys.stderr)
    # As tdn classify: skipped images were reported above; the exit status must not hide them.
    return 1 if skipped or unlabelled else 0
