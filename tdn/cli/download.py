"""tdn download: published weights, cfg and class names into the user cache."""

from __future__ import annotations

import argparse
from pathlib import Path

from tdn.download import BUNDLES, cache_dir, download


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "download", help="fetch published weights and class names",
        description="Download a network's published files into the user cache "
                    f"({cache_dir()}), each checked against its SHA-256.")
    parser.add_argument("bundle", choices=sorted(BUNDLES), help="what to fetch")
    parser.add_argument("--dir", type=Path, help="folder to write to instead of the cache")
    parser.add_argument("--mirror", metavar="URL|DIR",
                        help="fetch the same file names from this base URL or local folder")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    for path in download(args.bundle, args.dir, args.mirror):
        print(path)
    return 0
