"""tdn backends: every registered backend, its precisions, whether it can run here, and why not."""

from __future__ import annotations

import argparse

from tdn.plugins import registry


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("backends", help="list backends and whether they are available",
                                   description="List every backend that tdn and its plugins "
                                               "register: the precisions it offers (the first is "
                                               "its default), whether it can run here, and why not.")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    backends = registry()
    width = max(len(name) for name in backends.names())
    for name in backends.names():
        entry = backends.entries[name]
        reason = backends.unavailable_reason(name)
        backend = backends.loaded(name)  # None when the plugin's factory failed
        state = "available" if reason is None else "unavailable"
        detail = reason or (backend.description if backend else "")
        precisions = ",".join(backend.precisions) if backend else "-"
        print(f"{name:<{width}}  {state:<11}  {precisions:<14}  {detail}  [plugin {entry.plugin}]")
    return 0
