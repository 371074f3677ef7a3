"""Class names and top-k: Darknet's names lists and .data files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tdn.cfg import shown
from tdn.errors import TdnError
from tdn.files import lines_of, read_regular


def top_k(probabilities: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
    """The k largest (index, probability) pairs, largest first; ties keep the lower index."""
    p = np.asarray(probabilities).reshape(-1)
    order = np.argsort(-p, kind="stable")[:k]
    return [(int(i), float(p[i])) for i in order]


def read_names(path: str | Path) -> list[str]:
    text = read_regular(path, "names list").decode("utf-8", errors="replace")
    return [line.removesuffix("\r") for line in lines_of(text)]


def read_data_file(path: str | Path) -> dict[str, str]:
    """A Darknet .data file: key = value lines."""
    text = read_regular(path, "data file").decode("utf-8", errors="replace")
    options = {}
    for number, raw in enumerate(lines_of(text), start=1):
        line = raw.replace(" ", "").replace("\t", "").replace("\r", "")
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise TdnError(f"{path}:{number}: expected key=value, got '{shown(raw.strip())}'")
        options[key] = value
    return options


def names_from_data_file(path: str | Path) -> tuple[list[str] | None, int | None]:
    """The names list and top count a .data file points to.

    Darknet resolves `names=` against its working directory, usually the darknet tree;
    tdn tries the working directory, then the .data file's folder and its parent.
    """
    options = read_data_file(path)
    top = None
    if "top" in options:
        if not re.fullmatch(r"[0-9]{1,9}", options["top"]) or int(options["top"]) < 1:
            raise TdnError(f"{path}: 'top' must be a positive integer, got '{shown(options['top'])}'")
        top = int(options["top"])
    if "names" not in options:
        return None, top
    data_dir = Path(path).resolve().parent
    for candidate in (Path(options["names"]), data_dir / options["names"], data_dir.parent / options["names"]):
        if candidate.is_file():
            return read_names(candidate), top
    raise TdnError(f"{path}: names file '{options['names']}' not found (looked in the working "
                   f"directory, {data_dir} and {data_dir.parent})")
