"""The plugin API stays honest: every hook has a test here and a section in the README, the
README's worked example is a working plugin, and the entry-point path works end to end."""

from __future__ import annotations

import inspect
import os
import re
import sys
import types

import pytest

from tdn import hookspecs
from tdn.backend import Backend
from tdn.errors import TdnError
from tdn.hookspecs import hookimpl
from tdn.plugins import BUILTIN_PLUGINS, PluginWarning
from tdn.testing import check_backend

from .conftest import REPO, hermetic_backends

HOOKS = sorted(name for name, value in vars(hookspecs).items()
               if callable(value) and hasattr(value, "tdn_spec"))


def readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def test_the_hookspecs_are_found():
    assert HOOKS == ["tdn_register_backends", "tdn_register_commands"]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test_a_docstring_and_a_readme_section(hook):
    assert f"test_hook_{hook}" in globals(), f"tests/test_plugin_api.py has no test_hook_{hook}"
    assert (inspect.getdoc(getattr(hookspecs, hook)) or "").count("\n") >= 2, f"{hook} needs a docstring"
    assert f"### `{hook}`" in readme_section("Writing a backend plugin"), f"README: no section for {hook}"


def example_plugin() -> types.ModuleType:
    """The README's worked example, run as the module a plugin author would write."""
    blocks = re.findall(r"```python\n(.*?)```", readme_section("Writing a backend plugin"), re.S)
    plugin = next(block for block in blocks if "@hookimpl" in block)
    module = types.ModuleType("my_backend")
    exec(compile(plugin, "README.md (my_backend.py)", "exec"), module.__dict__)
    return module


def test_hook_tdn_register_backends():
    plugin = example_plugin()
    made = []

    class Counting:
        @hookimpl
        def tdn_register_backends(self, register):
            register("counted", lambda: made.append(1) or plugin.Float64Backend())

    backends = hermetic_backends(plugin, Counting())
    assert backends.entries["numpy-f64"].plugin == "my_backend"
    assert made == []  # factories are called when a backend is first needed, not at registration
    assert backends.instance("counted").name == "numpy-f64" and made == [1]
    backends.instance("counted")
    assert made == [1]  # and once
    again = types.ModuleType("my_backend_again")
    again.tdn_register_backends = plugin.tdn_register_backends
    with pytest.warns(PluginWarning, match="plugin my_backend_again failed to register its backends and is "
                                           "skipped: backend 'numpy-f64' is registered twice: by plugin "
                                           "my_backend and by plugin my_backend_again"):
        assert hermetic_backends(plugin, again).entries["numpy-f64"].plugin == "my_backend"


class Greeter:
    """A plugin adding `tdn hello NAME [--shout]`."""

    @hookimpl
    def tdn_register_commands(self, register):
        def add_arguments(parser):
            parser.add_argument("name")
            parser.add_argument("--shout", action="store_true")

        def run(args):
            greeting = f"hello {args.name}"
            print(greeting.upper() if args.shout else greeting)
            if args.name == "error":
                raise TdnError("no greeting for 'error'")
            return 0

        register("hello", "say hello", add_arguments, run)


def test_hook_tdn_register_commands(monkeypatch, capsys):
    from tdn import cli, plugins

    found = plugins.collect_commands(plugins.make_plugin_manager([Greeter()], entry_points=False))
    assert list(found) == ["hello"] and found["hello"].plugin == "Greeter" and found["hello"].help == "say hello"
    monkeypatch.setattr(plugins, "commands", lambda reserved=(): plugins.collect_commands(
        plugins.make_plugin_manager([Greeter()], entry_points=False), reserved))
    assert cli.main(["hello", "world", "--shout"]) == 0
    assert capsys.readouterr().out == "HELLO WORLD\n"
    assert cli.main(["hello", "error"]) == 1  # a TdnError from run() is one line, exit 1
    assert capsys.readouterr().err == "tdn: error: no greeting for 'error'\n"
    assert "hello" in cli.build_parser().format_help()

    again = types.ModuleType("greeter_again")
    again.tdn_register_commands = Greeter().tdn_register_commands
    with pytest.warns(PluginWarning, match="plugin greeter_again failed to register its commands and is skipped: "
                                           "command 'hello' is registered twice: by plugin Greeter and by "
                                           "plugin greeter_again"):
        found = plugins.collect_commands(plugins.make_plugin_manager([Greeter(), again], entry_points=False))
    assert found["hello"].plugin == "Greeter"
    with pytest.warns(PluginWarning, match="command 'hello' is registered twice: by tdn itself and by plugin Greeter"):
        assert plugins.collect_commands(plugins.make_plugin_manager([Greeter()], entry_points=False),
                                        ("hello",)) == {}


def test_a_missing_plugin_command_says_how_to_install_it(capsys):
    # Under pytest no entry points load, so tdn-torch's `train` is absent, as without the plugin.
    from tdn import cli

    assert cli.main(["train", "cfg/digits.cfg", "data", "--out", "x.weights"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs the tdn-torch plugin" in err and "pip install -e plugins/tdn-torch" in err


def test_the_worked_example_passes_the_conformance_check():
    plugin = example_plugin()
    check_backend("numpy-f64", backends=hermetic_backends(plugin), max_examples=20)


def test_plugin_tests_are_hermetic(installed_backends):
    from tdn.plugins import registry

    third_party = {entry.plugin for entry in installed_backends.entries.values()} - {
        entry.plugin for entry in registry().entries.values()}
    assert all(not name.startswith("tdn.") for name in third_party)
    assert set(registry().names()) == set(hermetic_backends().names())


def test_the_torch_plugin_arrives_through_its_entry_point(installed_backends):
    if "torch" not in installed_backends.names():
        if os.environ.get("CI"):
            pytest.fail("CI installs plugins/tdn-torch (.ci/run); its entry point was not found")
        pytest.skip("plugins/tdn-torch is not installed (pip install -e plugins/tdn-torch)")
    entry = installed_backends.entries["torch"]
    assert entry.plugin == "tdn-torch" and installed_backends.entries["torch-cuda"].plugin == "tdn-torch"
    assert "tdn_torch" not in BUILTIN_PLUGINS  # registered only through the entry point
    backend = installed_backends.get("torch")
    assert isinstance(backend, Backend) and backend.precisions == ("fp32", "fp64")
    assert "tdn_torch" in sys.modules and sys.modules["tdn_torch"].__file__.startswith(str(REPO / "plugins"))
    from tdn.plugins import collect_commands, make_plugin_manager

    train = collect_commands(make_plugin_manager(entry_points=True))["train"]
    assert train.plugin == "tdn-torch" and train.run.__module__ == "tdn_torch.train.command"
