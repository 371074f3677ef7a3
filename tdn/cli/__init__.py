"""The `tdn` command line: one module per subcommand, each with add_parser() and run()."""

from __future__ import annotations

import argparse
import sys
import warnings

from tdn import __version__
from tdn.cli import backends, bench, classify, download, export, summary, tune, valid
from tdn.errors import TdnError

SUBCOMMANDS = (classify, summary, backends, download, valid, bench, export, tune)


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
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    # argparse ends a nargs="*" or "?" positional at the first option; a subcommand that names
    # it in `trailing_positional` also gets paths given after its options.
    if extras:
        target = getattr(args, "trailing_positional", None)
        current = getattr(args, target) if target else None
        unknown = [extra for extra in extras if extra.startswith("-")]
        if isinstance(current, list) and not unknown:
            current.extend(extras)
        elif target and current is None and len(extras) == 1 and not unknown:
            setattr(args, target, extras[0])
        else:
            parser.error(f"unrecognized arguments: {' '.join(unknown or extras)}")
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
