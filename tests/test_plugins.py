"""Plugin manager and backend registry, with plugins registered hermetically."""

import pytest

from tdn.backend import Backend
from tdn.errors import BackendError
from tdn.hookspecs import hookimpl
from tdn.plugins import BackendRegistry, PluginWarning, make_plugin_manager, registry


class Unavailable(Backend):
    name = "fake-gpu"
    description = "a backend that cannot run here"
    layer_kinds = frozenset()
    priority = 100

    def unavailable_reason(self):
        return "no fake device found"

    def prepare(self, graph, params, batch, precision):
        raise AssertionError("never prepared")


class FakePlugin:
    @hookimpl
    def tdn_register_backends(self, register):
        register("fake-gpu", Unavailable)


class DuplicatePlugin:
    @hookimpl
    def tdn_register_backends(self, register):
        register("numpy", Unavailable)


def hermetic(*plugins):
    return BackendRegistry(make_plugin_manager(plugins, entry_points=False))


def test_builtin_backends_register_through_the_hook():
    backends = hermetic()
    assert {"numpy", "numpy-exact"} <= set(backends.names())
    assert backends.entries["numpy"].plugin == "tdn.backends.numpy"


def test_auto_skips_unavailable_backends_even_with_higher_priority():
    backends = hermetic(FakePlugin())
    assert backends.get("auto").name == "numpy"
    with pytest.raises(BackendError, match="backend 'fake-gpu' is not available: no fake device found"):
        backends.get("fake-gpu")


def test_duplicate_backend_name_names_both_plugins_and_skips_the_later():
    with pytest.warns(PluginWarning, match=r"^plugin DuplicatePlugin failed to register its backends and is "
                                           r"skipped: backend 'numpy' is registered twice: by plugin "
                                           r"tdn\.backends\.numpy and by plugin DuplicatePlugin$"):
        backends = hermetic(DuplicatePlugin())
    assert backends.entries["numpy"].plugin == "tdn.backends.numpy"


def test_unknown_backend_lists_the_installed_ones():
    with pytest.raises(BackendError, match=r"unknown backend 'metal' \(installed: .*numpy.*see 'tdn backends'\)"):
        hermetic().get("metal")


def test_invalid_names_are_rejected():
    class BadName:
        @hookimpl
        def tdn_register_backends(self, register):
            register("No Spaces", Unavailable)

    with pytest.warns(PluginWarning, match="BadName failed to register its backends and is skipped: "
                                           "invalid backend name 'No Spaces'"):
        hermetic(BadName())


def test_process_registry_is_built_once():
    assert registry() is registry()
    assert "numpy" in registry().names()
