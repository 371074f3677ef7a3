"""The plugin API: the hooks a tdn plugin may implement.

A plugin is a module or object with functions marked ``@tdn.hookimpl``, published under
the entry-point group ``tdn`` (the README's "Writing a backend plugin" has a worked example).
tdn's own backends are registered through these same hooks. Every hook here has a section in
that README and a ``test_hook_<name>`` in tests/test_plugin_api.py (a meta-test checks both).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from tdn.backend import Backend

hookspec = pluggy.HookspecMarker("tdn")
hookimpl = pluggy.HookimplMarker("tdn")

RegisterBackend = Callable[[str, "Callable[[], Backend]"], None]


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
