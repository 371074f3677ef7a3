"""The `tdn` command line: one module per subcommand, each with add_parser() and run()."""

from __future__ import annotations

import argparse
import sys
import warnings

from tdn import __version__
from tdn.cli import backends, bench, classify, download, export, summary
from tdn.errors import TdnError

SUBCOMMANDS = (classify, summary, backends, download, bench, export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tdn",
        description="Run Darknet image classifiers (Tiny Darknet first) with NumPy or CUDA backends.",
    )
    parser.add_argument("--version", action="version", version=f"tdn {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"tdn: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _print_warning
    try:
        return args.run(args)
    except TdnError as error:
        print(f"tdn: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # A closed pipe (tdn ... | head) is not an error of ours.
        sys.stderr.close()
        return 0
