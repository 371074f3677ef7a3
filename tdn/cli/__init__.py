"""The `tdn` command line: one module per subcommand, each with add_parser() and run()."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from tdn import __version__
from tdn.cli.signals import exit_status, terminate_like_interrupt
from tdn.errors import TdnError, WrongKindOfFile, one_line

SUBCOMMANDS = ("classify", "summary", "backends", "download", "valid", "bench", "export", "tune")
# Commands a plugin provides, and how to install it when it is missing.
PLUGIN_COMMANDS = {"train": "the tdn-torch plugin (from tdn's source tree: pip install torch && "
                            "pip install -e plugins/tdn-torch)"}


def needed_subcommands(argv: Sequence[str]) -> Sequence[str]:
    """The subcommands whose modules (and their imports) this command line needs: the one it
    names, none for `tdn --version`, and all otherwise (for `tdn --help`, the list of choices
    and the commands plugins add)."""
    if argv[:1] == ["--version"]:
        return ()
    if argv[:1] and argv[0] in SUBCOMMANDS:
        return argv[:1]
    return SUBCOMMANDS


def build_parser(subcommands: Sequence[str] = SUBCOMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tdn",
        description="Run Darknet image classifiers (Tiny Darknet first) with NumPy or CUDA backends.",
    )
    parser.add_argument("--version", action="version", version=f"tdn {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in subcommands:
        importlib.import_module(f"tdn.cli.{name}").add_parser(subparsers)
    if tuple(subcommands) == SUBCOMMANDS:  # a command no built-in module names may be a plugin's
        add_plugin_commands(subparsers)
    return parser


def add_plugin_commands(subparsers) -> None:
    """The subcommands plugins register (tdn_register_commands), and a line naming the plugin
    to install for each known one that is missing."""
    from tdn import plugins

    found = plugins.commands(tuple(subparsers.choices))
    for entry in found.values():
        parser = subparsers.add_parser(entry.name, help=entry.help, description=entry.help)
        entry.add_arguments(parser)
        parser.set_defaults(run=entry.run)
    for name, provider in PLUGIN_COMMANDS.items():
        if name not in found:
            parser = subparsers.add_parser(name, help=f"(needs {provider.split(' (')[0]})", add_help=False)
            parser.add_argument("ignored", nargs=argparse.REMAINDER)
            parser.set_defaults(run=_missing_plugin(name, provider))


def _missing_plugin(name: str, provider: str):
    def run(args: argparse.Namespace) -> int:
        raise TdnError(f"'tdn {name}' needs {provider}")
    return run


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"tdn: warning: {one_line(message)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        parser = build_parser(needed_subcommands(argv))
    except TdnError as error:
        print(f"tdn: error: {error}", file=sys.stderr)
        return 1
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
        with terminate_like_interrupt():
            return args.run(args)
    except TdnError as error:
        order = getattr(args, "order", None) if isinstance(error, WrongKindOfFile) else None
        hint = f" (arguments in the wrong order? expected: {order})" if order else ""
        print(f"tdn: error: {one_line(error)}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interrupt:
        return exit_status(interrupt)
    except BrokenPipeError:
        # A closed pipe (tdn ... | head) is not an error of ours.
        sys.stderr.close()
        return 0
