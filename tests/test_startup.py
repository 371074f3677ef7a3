"""Cheap start-up: `import tdn`, `tdn --version` and `tdn backends` load none of the heavy modules
(checked in a fresh interpreter's sys.modules; the times are in benchmarks/results/startup.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import REPO

# Image decoding, progress bars, the network and its pipeline, test and export tools, other
# frameworks: none is needed to print the version or list backends.
HEAVY = ("PIL", "tqdm", "hypothesis", "torch", "onnx", "onnxruntime", "ray", "tdn.image", "tdn.pipeline",
         "tdn.network", "tdn.weights", "tdn.cli.classify", "tdn.cli.bench", "tdn.cli.valid", "tdn.cli.export")
# ... and printing the version needs no NumPy and no plugin machinery either.
NOT_FOR_VERSION = HEAVY + ("numpy", "pluggy", "tdn.plugins", "tdn.backend", "tdn.cli.backends")

SCRIPT = """
import json, sys
from tdn.cli import main
try:
    code = main(sys.argv[2:])
except SystemExit as exit:  # --version exits through argparse
    code = exit.code
with open(sys.argv[1], "w") as file:
    json.dump({"code": code, "modules": sorted(sys.modules)}, file)
"""


def modules_loaded_by(tmp_path, *argv: str, load_plugins: str | None = None) -> set[str]:
    """The modules a fresh interpreter holds after running `tdn ARGV` (exit status 0 required)."""
    env = {key: value for key, value in os.environ.items() if key != "TDN_LOAD_PLUGINS"}
    if load_plugins is not None:
        env["TDN_LOAD_PLUGINS"] = load_plugins
    report = tmp_path / "modules.json"
    subprocess.run([sys.executable, "-c", SCRIPT, str(report), *argv], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=120)
    result = json.loads(report.read_text())
    assert result["code"] == 0
    return set(result["modules"])


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(name for name in names if name in modules)


def test_import_tdn_loads_none_of_its_modules(tmp_path):
    code = "import json, sys, tdn; print(json.dumps(sorted(sys.modules)))"
    modules = set(json.loads(subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True,
                                            capture_output=True, text=True, timeout=60).stdout))
    assert loaded(modules, NOT_FOR_VERSION) == []
    # tdn.limits holds one constant (preprocess's default), nothing that imports.
    assert sorted(name for name in modules if name.startswith("tdn")) == ["tdn", "tdn.limits"]


def test_version_loads_nothing_heavy(tmp_path):
    assert loaded(modules_loaded_by(tmp_path, "--version"), NOT_FOR_VERSION) == []


def test_listing_the_builtin_backends_loads_nothing_heavy(tmp_path):
    modules = modules_loaded_by(tmp_path, "backends", load_plugins="")
    assert {"tdn.backends.numpy", "tdn.backends.cuda", "tdn.testing.reference"} <= modules
    assert loaded(modules, HEAVY) == []


def test_installed_plugins_are_imported_but_their_frameworks_are_not_until_asked(tmp_path):
    try:
        import tdn_torch  # noqa: F401
    except ImportError:
        pytest.skip("plugins/tdn-torch is not installed (pip install -e plugins/tdn-torch)")
    code = ("import json, sys, tdn.plugins; r = tdn.plugins.registry(); "
            "print(json.dumps([r.names(), sorted(sys.modules)]))")
    names, modules = json.loads(subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True,
                                               capture_output=True, text=True, timeout=60).stdout)
    assert "torch" in names and "tdn_torch" in modules
    assert loaded(set(modules), HEAVY) == []


def test_version_is_printed_without_the_subcommands(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tdn", "--version"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    import tdn

    assert (done.returncode, done.stdout, done.stderr) == (0, f"tdn {tdn.__version__}\n", "")


def test_classifying_with_auto_asks_no_backend_below_the_one_it_picks(tmp_path, shared):
    # numpy is available, so torch-cuda (priority 0) is never asked whether it can run: asking imports torch.
    modules = modules_loaded_by(tmp_path, "classify", "--names", str(shared / "data/imagenet.shortnames.list"),
                                "cfg/tiny.cfg", str(shared / "weights/tiny.weights"),
                                str(shared / "images/dog-stb.png"))
    assert {"numpy", "PIL", "tdn.network"} <= modules
    assert loaded(modules, ("torch", "hypothesis", "onnx", "onnxruntime", "ray", "tdn.cli.bench")) == []
