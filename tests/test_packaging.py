"""The public API and the package's metadata: tdn.__all__ holds every name the README's Python
uses, each typed; the version has one home; py.typed ships. (.ci/run checks the built wheel.)"""

from __future__ import annotations

import inspect
import re
from importlib.metadata import version

import tdn

from .conftest import REPO


def readme_python() -> str:
    return "\n".join(re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S))


def test_all_holds_every_top_level_name_the_readme_uses():
    used = set(re.findall(r"\btdn\.(\w+)", readme_python()))
    submodules = {name for name in used if (REPO / "tdn" / f"{name}.py").is_file()
                  or (REPO / "tdn" / name / "__init__.py").is_file()}
    assert {"load", "preprocess", "top_k"} <= used
    assert sorted(used - submodules - set(tdn.__all__)) == []
    assert "TdnError" in tdn.__all__  # the README's error rule names it


def test_every_name_in_all_resolves_and_every_callable_has_typed_returns():
    untyped = []
    for name in tdn.__all__:
        value = getattr(tdn, name)
        functions = [value] if inspect.isfunction(value) else [
            member for member_name, member in vars(value).items()
            if inspect.isfunction(member) and not member_name.startswith("_")] if inspect.isclass(value) else []
        untyped += [f"{name}.{f.__name__}" for f in functions if "return" not in f.__annotations__]
    assert untyped == []
    assert tdn.load.__annotations__["return"] == "Network"
    assert sorted(dir(tdn)) == sorted(set(dir(tdn)) | set(tdn.__all__))


def pyproject_table(name: str) -> str:
    """One [table] of pyproject.toml, as text (tomllib needs Python 3.11)."""
    match = re.search(rf"^\[{re.escape(name)}\]\n(.*?)(?=^\[|\Z)", (REPO / "pyproject.toml").read_text(), re.S | re.M)
    assert match, f"pyproject.toml has no [{name}]"
    return match.group(1)


def test_the_version_has_one_home():
    assert re.search(r'^dynamic = \["version"\]', pyproject_table("project"), re.M)
    assert not re.search(r"^version\b", pyproject_table("project"), re.M)
    assert 'version = {attr = "tdn.__version__"}' in pyproject_table("tool.setuptools.dynamic")
    assert re.search(r'^__version__ = "[^"]+"$', (REPO / "tdn" / "__init__.py").read_text(), re.M)
    # The installed metadata is built from it (reinstall after changing it: pip install -e .).
    assert version("tdn") == tdn.__version__


def test_py_typed_ships():
    assert (REPO / "tdn" / "py.typed").is_file()
    assert '"tdn" = ["py.typed"]' in pyproject_table("tool.setuptools.package-data")
