"""The README as a new user reads it: a synopsis of every command and option, Python examples
that run as written from the checkout's root, extras that exist, the exit-status rule."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from tdn.cli import build_parser
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def blocks(language: str = "") -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def commands() -> dict[str, argparse.ArgumentParser]:
    """'classify' -> its parser, ..., 'export onnx' -> the export format's parser."""
    found = {}
    parsers = [("", build_parser())]
    while parsers:
        prefix, parser = parsers.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found[f"{prefix}{name}"] = sub
                    parsers.append((f"{prefix}{name} ", sub))
    return found


def synopsis() -> dict[str, str]:
    block = next(block for block in blocks() if block.startswith("tdn classify ["))
    entries: dict[str, str] = {}
    command = ""
    for line in block.splitlines():
        if line.startswith("tdn "):
            words = line.split()
            command = " ".join(words[1:3]) if words[1:2] == ["export"] else words[1]
        entries[command] = entries.get(command, "") + line.split("#")[0]
    return entries


def test_the_synopsis_lists_every_command_and_option():
    written = synopsis()
    for command, parser in commands().items():
        if command == "export":
            continue  # only its formats take arguments
        assert command in written, f"tdn {command} is missing from the README's synopsis"
        for action in parser._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert option in written[command], f"tdn {command} {option} is missing from the synopsis"
    assert "--version" in written["--version"]


@pytest.mark.parametrize("marker", ['tdn.load("cfg/tiny.cfg"', "net.predict_batches(paths"])
def test_the_python_examples_run_verbatim_from_the_checkout_root(shared, marker):
    code = next(block for block in blocks("python") if marker in block)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    if marker.startswith("tdn.load"):
        top = eval(result.stdout)  # [(index, probability), ...]
        assert len(top) == 5 and top[0][0] == 14 and abs(top[0][1] - 0.17) < 0.01  # malamute
    else:
        lines = result.stdout.splitlines()
        assert lines[:2] == ["../shared/darknet/images/dog.jpg 14", "../shared/darknet/images/dog-stb.png 14"]
        assert lines[2].startswith("missing.jpg missing.jpg: cannot read image")


def test_every_extra_the_readme_names_exists():
    # (tomllib is Python 3.11's; tdn supports 3.10)
    section = (REPO / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1].split("\n[")[0]
    extras = set(re.findall(r"^([a-z0-9_-]+) *=", section, re.M))
    assert {"test", "onnx", "cuda"} <= extras
    named = {extra for group in re.findall(r"(?:tdn|\.)\[([a-z0-9_,-]+)\]", README) for extra in group.split(",")}
    assert named and named <= extras, f"not in pyproject.toml: {named - extras}"


def test_the_exit_status_rule_is_written_down():
    assert re.search(r"1 for an error .* and also when `classify` or `valid` skipped any image",
                     " ".join(README.split()))
