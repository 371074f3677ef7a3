"""The plugin API: the hooks a tdn plugin may implement.

A plugin is a module or object with functions marked ``@tdn.hookimpl``, published under
the entry-point group ``tdn`` (the README's "Writing a backend plugin" has a worked example).
tdn's own backends are registered through these same hooks. Every hook here has a section in
that README and a ``test_hook_<name>`` in tests/test_plugin_api.py (a meta-test checks both).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from tdn.backend import Backend

hookspec = pluggy.HookspecMarker("tdn")
hookimpl = pluggy.HookimplMarker("tdn")

RegisterBackend = Callable[[str, "Callable[[], Backend]"], None]
RegisterCommand = Callable[[str, str, Callable[[argparse.ArgumentParser], None],
                            Callable[[argparse.Namespace], int]], None]


@hookspec
def tdn_register_backends(register: RegisterBackend) -> None:
    """Called once when tdn first needs its list of backends.

    Call ``register(name, factory)`` for each backend the plugin provides. ``name`` is
    what users pass to ``--backend`` (lower case letters, digits, ``-`` and ``_``).
    ``factory()`` is called with no arguments and returns a :class:`tdn.backend.Backend`;
    it must be cheap and import nothing heavy, since ``tdn backends`` calls it to ask
    whether the backend is available. A plugin that raises here, or registers a name
    already taken (the warning names both plugins), is skipped with a warning.
    """


@hookspec
def tdn_register_commands(register: RegisterCommand) -> None:
    """Called once when the ``tdn`` command line is built.

    Call ``register(name, help, add_arguments, run)`` for each subcommand the plugin adds:
    ``tdn NAME`` then parses its arguments with the options ``add_arguments(parser)`` adds to
    an ``argparse.ArgumentParser`` and calls ``run(args)``, whose return value is the exit
    status; a ``tdn.TdnError`` it raises is printed as one line and exits 1. ``add_arguments``
    runs whenever ``tdn`` starts, ``run`` only for ``tdn NAME``: import heavy libraries in ``run``.
    A name that is a built-in command or is registered twice is an error naming the plugins.
    """
