"""The plugin manager and the backend registry built from its hooks.

Built-in backends are plugins listed here and registered exactly like third-party ones;
only third parties arrive through the ``tdn`` entry-point group. Nothing else in tdn
calls ``pm.hook``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache

import pluggy

from tdn import hookspecs
from tdn.backend import Backend
from tdn.errors import BackendError

BUILTIN_PLUGINS = ("tdn.backends.numpy", "tdn.backends.cuda", "tdn.testing.reference")
ENTRY_POINT_GROUP = "tdn"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


@dataclass(frozen=True)
class BackendEntry:
    name: str
    plugin: str
    factory: Callable[[], Backend]


class BackendRegistry:
    """The backends every registered plugin provides, by name."""

    def __init__(self, pm: pluggy.PluginManager):
        self.entries: dict[str, BackendEntry] = {}
        self._instances: dict[str, Backend] = {}
        for impl in pm.hook.tdn_register_backends.get_hookimpls():
            impl.function(register=self._register_from(impl.plugin_name))

    def _register_from(self, plugin: str) -> Callable[[str, Callable[[], Backend]], None]:
        def register(name: str, factory: Callable[[], Backend]) -> None:
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise BackendError(f"plugin {plugin}: invalid backend name {name!r}")
            if name in self.entries:
                raise BackendError(f"backend '{name}' is registered twice: by plugin "
                                   f"{self.entries[name].plugin} and by plugin {plugin}")
            self.entries[name] = BackendEntry(name, plugin, factory)
        return register

    def names(self) -> list[str]:
        return sorted(self.entries)

    def instance(self, name: str) -> Backend:
        if name not in self.entries:
            known = ", ".join(self.names()) or "none"
            raise BackendError(f"unknown backend '{name}' (installed: {known}; see 'tdn backends')")
        if name not in self._instances:
            self._instances[name] = self.entries[name].factory()
        return self._instances[name]

    def get(self, name: str) -> Backend:
        """The named backend, or "auto": the available one with the highest priority (never one
        with a negative priority)."""
        if name == "auto":
            available = [self.instance(n) for n in self.names()
                         if self.instance(n).unavailable_reason() is None and self.instance(n).priority >= 0]
            if not available:
                raise BackendError("no backend is available here (see 'tdn backends')")
            return max(available, key=lambda backend: backend.priority)
        backend = self.instance(name)
        reason = backend.unavailable_reason()
        if reason is not None:
            raise BackendError(f"backend '{name}' is not available: {reason}")
        return backend


def make_plugin_manager(plugins: Iterable[object] = (), *, entry_points: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("tdn")
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    for plugin in plugins:
        # Name objects after their class so error messages can say which plugin.
        pm.register(plugin, name=getattr(plugin, "__name__", type(plugin).__qualname__))
    if entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


@cache
def registry() -> BackendRegistry:
    """The process-wide registry: built-in plugins plus installed third-party ones."""
    return BackendRegistry(make_plugin_manager())
