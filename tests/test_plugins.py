"""Plugin manager and backend registry: plugins registered hermetically, and fake installed
plugins (a module and its dist-info on sys.path) that reach tdn through the entry-point group."""

import os
import subprocess
import sys

import pytest

from tdn.backend import Backend
from tdn.errors import BackendError
from tdn.hookspecs import hookimpl
from tdn.plugins import BUILTIN_PLUGINS, BackendRegistry, PluginWarning, make_plugin_manager, registry


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


class RaisesInRegistration:
    @hookimpl
    def tdn_register_backends(self, register):
        register("half-registered", Unavailable)
        raise RuntimeError("cannot find my library\nsecond line")


def test_a_plugin_that_raises_in_registration_is_one_warning_and_registers_nothing():
    with pytest.warns(PluginWarning) as caught:
        backends = hermetic(RaisesInRegistration(), FakePlugin())
    assert [str(w.message) for w in caught] == [
        "plugin RaisesInRegistration failed to register its backends and is skipped: "
        "RuntimeError: cannot find my library"]
    assert "half-registered" not in backends.names() and "fake-gpu" in backends.names()
    assert backends.get("auto").name == "numpy"


class FactoryRaises:
    @hookimpl
    def tdn_register_backends(self, register):
        def factory():
            raise ImportError("libfoo.so: cannot open shared object file")

        register("broken-factory", factory)


def test_a_backend_whose_factory_raises_is_unavailable_and_says_why():
    backends = hermetic(FactoryRaises())
    reason = "plugin FactoryRaises failed: ImportError: libfoo.so: cannot open shared object file"
    assert backends.unavailable_reason("broken-factory") == reason
    assert backends.loaded("broken-factory") is None
    with pytest.raises(BackendError, match=f"^backend 'broken-factory' is not available: {reason}$"):
        backends.get("broken-factory")
    assert backends.get("auto").name == "numpy"


def test_auto_asks_backends_in_priority_order_only_until_one_can_run():
    asked = []

    class Low(Unavailable):
        name, priority = "low", 1

        def unavailable_reason(self):
            asked.append(self.name)
            return None

    class High(Low):
        name, priority = "high", 50

        def unavailable_reason(self):
            asked.append(self.name)
            return "no device"

    class Plugin:
        @hookimpl
        def tdn_register_backends(self, register):
            register("low", Low)
            register("high", High)

    assert hermetic(Plugin()).get("auto").name == "numpy"
    assert asked == ["high"]  # numpy (10) can run: "low" is never asked


# A fake installed distribution per plugin: the module, and its dist-info with the entry point.
FAKE_PLUGINS = {
    "tdn-good": ("good = fake_good_plugin", "fake_good_plugin", """
from tdn.hookspecs import hookimpl
from tdn.testing.reference import ReferenceBackend

class Good(ReferenceBackend):
    name = "good-one"

@hookimpl
def tdn_register_backends(register):
    register("good-one", Good)
"""),
    "tdn-broken": ("broken = fake_broken_plugin", "fake_broken_plugin",
                   "raise RuntimeError('this plugin needs libfoo')\n"),
}


@pytest.fixture
def fake_installed(tmp_path, monkeypatch):
    """Two plugins installed under the `tdn` entry-point group: one good, one raising on import."""
    for dist, (entry_point, module, source) in FAKE_PLUGINS.items():
        (tmp_path / f"{module}.py").write_text(source)
        info = tmp_path / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[tdn]\n{entry_point}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("TDN_LOAD_PLUGINS", raising=False)
    yield tmp_path
    for _, module, _ in FAKE_PLUGINS.values():
        sys.modules.pop(module, None)


def installed(monkeypatch, load_plugins=None):
    if load_plugins is not None:
        monkeypatch.setenv("TDN_LOAD_PLUGINS", load_plugins)
    return BackendRegistry(make_plugin_manager(entry_points=True))


BROKEN = ("plugin broken (fake_broken_plugin) failed to load and is skipped: "
          "RuntimeError: this plugin needs libfoo")


def test_a_plugin_that_raises_on_import_is_one_warning_and_the_others_keep_working(fake_installed, monkeypatch):
    with pytest.warns(PluginWarning) as caught:
        backends = installed(monkeypatch)
    assert [str(w.message) for w in caught] == [BROKEN]
    assert {"good-one", "numpy", "reference"} <= set(backends.names())
    assert backends.entries["good-one"].plugin == "good"
    assert backends.get("good-one").name == "good-one"


@pytest.mark.parametrize("setting, expected", [
    ("", set()), ("good", {"good"}), ("tdn-good", {"good"}), (" TDN_Good ,", {"good"})])
def test_tdn_load_plugins_chooses_by_entry_point_or_distribution_name(fake_installed, monkeypatch, setting, expected):
    backends = installed(monkeypatch, setting)  # the broken plugin is not chosen: no warning
    third_party = {entry.plugin for entry in backends.entries.values()} - set(BUILTIN_PLUGINS)
    assert third_party == expected
    assert "fake_broken_plugin" not in sys.modules


def test_tdn_load_plugins_naming_no_installed_plugin_is_a_warning(fake_installed, monkeypatch):
    with pytest.warns(PluginWarning) as caught:
        backends = installed(monkeypatch, "good,tdn-brokn")
    assert [str(w.message) for w in caught] == [
        "TDN_LOAD_PLUGINS names 'tdn-brokn', which is not an installed tdn plugin"]
    assert "good-one" in backends.names()


def test_the_command_line_prints_one_warning_line_and_lists_the_others(fake_installed):
    env = {**os.environ, "PYTHONPATH": str(fake_installed)}
    env.pop("TDN_LOAD_PLUGINS", None)
    done = subprocess.run([sys.executable, "-m", "tdn", "backends"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode, done.stderr) == (0, f"tdn: warning: {BROKEN}\n")
    listed = {line.split()[0] for line in done.stdout.splitlines()}
    assert {"good-one", "numpy", "numpy-exact", "reference", "cuda"} <= listed
