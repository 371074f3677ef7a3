"""The plugin manager, and the backend registry and plugin commands built from its hooks.

Built-in backends are plugins listed here and registered exactly like third-party ones;
only third parties arrive through the ``tdn`` entry-point group. Nothing else in tdn
calls ``pm.hook``. A plugin that fails (on import, in its hook, in a backend's factory) is
a warning naming it, and every other backend keeps working.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import pluggy

from tdn import hookspecs
from tdn.errors import BackendError, TdnError

if TYPE_CHECKING:
    from tdn.backend import Backend

BUILTIN_PLUGINS = ("tdn.backends.numpy", "tdn.backends.cuda", "tdn.testing.reference")
ENTRY_POINT_GROUP = "tdn"
# Which installed third-party plugins load: unset, all; else a comma-separated list of
# entry-point or distribution names (empty: none), as LLM_LOAD_PLUGINS does for llm.
LOAD_PLUGINS = "TDN_LOAD_PLUGINS"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


class PluginWarning(UserWarning):
    """A plugin that failed and was skipped; the other plugins keep working."""


def _one_line(error: BaseException) -> str:
    """The error's first line, after its type unless it is one of tdn's own."""
    line = (str(error).strip().splitlines() or [""])[0]
    if isinstance(error, TdnError):
        return line
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


def _normalized(name: str) -> str:
    """A distribution or entry-point name as packaging compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


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
            # A plugin registers all of its backends or none.
            registered: dict[str, BackendEntry] = {}
            try:
                impl.function(register=self._register_into(registered, impl.plugin_name))
            except Exception as error:  # whatever a plugin raises, the others keep working
                warnings.warn(f"plugin {impl.plugin_name} failed to register its backends and is skipped: "
                              f"{_one_line(error)}", PluginWarning, stacklevel=2)
                continue
            self.entries.update(registered)

    def _register_into(self, registered: dict[str, BackendEntry],
                       plugin: str) -> Callable[[str, Callable[[], Backend]], None]:
        def register(name: str, factory: Callable[[], Backend]) -> None:
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise BackendError(f"invalid backend name {name!r}")
            earlier = self.entries.get(name) or registered.get(name)
            if earlier is not None:
                raise BackendError(f"backend '{name}' is registered twice: by plugin "
                                   f"{earlier.plugin} and by plugin {plugin}")
            registered[name] = BackendEntry(name, plugin, factory)
        return register

    def names(self) -> list[str]:
        return sorted(self.entries)

    def entry(self, name: str) -> BackendEntry:
        if name not in self.entries:
            known = ", ".join(self.names()) or "none"
            raise BackendError(f"unknown backend '{name}' (installed: {known}; see 'tdn backends')")
        return self.entries[name]

    def instance(self, name: str) -> Backend:
        if name not in self._instances:
            self._instances[name] = self.entry(name).factory()
        return self._instances[name]

    def loaded(self, name: str) -> Backend | None:
        """The backend if its factory has been called and returned it."""
        return self._instances.get(name)

    def unavailable_reason(self, name: str) -> str | None:
        """Why backend `name` cannot run here, or None; a factory or check that raises is a reason."""
        entry = self.entry(name)
        try:
            return self.instance(name).unavailable_reason()
        except Exception as error:  # a plugin's bug makes its backend unavailable, not tdn unusable
            return f"plugin {entry.plugin} failed: {_one_line(error)}"

    def get(self, name: str) -> Backend:
        """The named backend, or "auto": the available one with the highest priority (never one
        with a negative priority)."""
        if name == "auto":
            return self._best_available()
        reason = self.unavailable_reason(name)
        if reason is not None:
            raise BackendError(f"backend '{name}' is not available: {reason}")
        return self.instance(name)

    def _best_available(self) -> Backend:
        # Backends are asked whether they can run in priority order, and only until one can:
        # asking may import a large library (CuPy, torch) that a lower one should not cost.
        # A negative priority (a testing backend such as interpreted cuda) is never chosen.
        ranked = []
        for name in self.names():
            try:
                priority = self.instance(name).priority
            except Exception:  # a failing factory: unavailable (`tdn backends` says why)
                continue
            if priority >= 0:
                ranked.append((-priority, name))
        for _, name in sorted(ranked):
            if self.unavailable_reason(name) is None:
                return self.instance(name)
        raise BackendError("no backend is available here (see 'tdn backends')")


def make_plugin_manager(plugins: Iterable[object] = (), *, entry_points: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("tdn")
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    for plugin in plugins:
        # Name objects after their class so error messages can say which plugin.
        pm.register(plugin, name=getattr(plugin, "__name__", type(plugin).__qualname__))
    if entry_points:
        load_entry_points(pm)
    return pm


def load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register the installed plugins that TDN_LOAD_PLUGINS chooses (all when it is unset);
    one that fails to import is skipped with a warning naming it."""
    setting = os.environ.get(LOAD_PLUGINS)
    chosen = None if setting is None else {
        _normalized(name.strip()) for name in setting.split(",") if name.strip()}
    if chosen == set():
        return
    import importlib.metadata  # here: tens of ms that a run choosing no plugin need not pay

    installed: set[str] = set()
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        names = {_normalized(entry_point.name)}
        if entry_point.dist is not None:
            names.add(_normalized(entry_point.dist.name))
        installed |= names
        if (chosen is not None and not names & chosen) or pm.has_plugin(entry_point.name):
            continue
        try:
            pm.register(entry_point.load(), name=entry_point.name)
        except Exception as error:  # whatever a plugin raises, the others keep working
            warnings.warn(f"plugin {entry_point.name} ({entry_point.value}) failed to load and is skipped: "
                          f"{_one_line(error)}", PluginWarning, stacklevel=2)
    for name in sorted((chosen or set()) - installed):
        warnings.warn(f"{LOAD_PLUGINS} names '{name}', which is not an installed tdn plugin",
                      PluginWarning, stacklevel=2)


@cache
def registry() -> BackendRegistry:
    """The process-wide registry: built-in plugins plus installed third-party ones."""
    return BackendRegistry(make_plugin_manager())


@dataclass(frozen=True)
class CommandEntry:
    """A subcommand a plugin adds to ``tdn`` (the tdn_register_commands hook)."""

    name: str
    plugin: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def collect_commands(pm: pluggy.PluginManager, reserved: Iterable[str] = ()) -> dict[str, CommandEntry]:
    """Every plugin's commands by name; `reserved` are the built-in commands' names. A plugin
    whose registration fails (it raises, or names a command already taken) adds none of its
    commands and is skipped with a warning naming it, as for backends."""
    entries: dict[str, CommandEntry] = {}
    for impl in pm.hook.tdn_register_commands.get_hookimpls():
        registered: dict[str, CommandEntry] = {}

        def register(name, help, add_arguments, run, plugin=impl.plugin_name, registered=registered):
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise TdnError(f"invalid command name {name!r}")
            earlier = entries.get(name) or registered.get(name)
            if name in reserved or earlier is not None:
                owner = f"plugin {earlier.plugin}" if earlier is not None else "tdn itself"
                raise TdnError(f"command '{name}' is registered twice: by {owner} and by plugin {plugin}")
            registered[name] = CommandEntry(name, plugin, help, add_arguments, run)

        try:
            impl.function(register=register)
        except Exception as error:  # whatever a plugin raises, the others keep working
            warnings.warn(f"plugin {impl.plugin_name} failed to register its commands and is skipped: "
                          f"{_one_line(error)}", PluginWarning, stacklevel=2)
            continue
        entries.update(registered)
    return entries


@cache
def commands(reserved: tuple[str, ...] = ()) -> dict[str, CommandEntry]:
    """The process-wide plugin commands (built-in plugins plus installed third-party ones)."""
    return collect_commands(make_plugin_manager(), reserved)
