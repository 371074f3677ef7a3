"""Class names and top-k: Darknet's names lists and .data files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tdn.errors import TdnError


def top_k(probabilities: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
    """The k largest (index, probability) pairs, largest first; ties keep the lower index."""
    p = np.asarray(probabilities).reshape(-1)
    order = np.argsort(-p, kind="stable")[:k]
    return [(int(i), float(p[i])) for i in order]


def read_names(path: str | Path) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise TdnError(f"{path}: cannot read names list: {error.strerror or error}") from None
    return text.splitlines()


def read_data_file(path: str | Path) -> dict[str, str]:
    """A Darknet .data file: key = value lines."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise TdnError(f"{path}: cannot read data file: {error.strerror or error}") from None
    options = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.replace(" ", "").replace("\t", "")
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise TdnError(f"{path}:{number}: expected key=value, got '{raw.strip()}'")
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
        if not options["top"].isdigit() or int(options["top"]) < 1:
            raise TdnError(f"{path}: 'top' must be a positive integer, got '{options['top']}'")
        top = int(options["top"])
    if "names" not in options:
        return None, top
    data_dir = Path(path).resolve().parent
    for candidate in (Path(options["names"]), data_dir / options["names"], data_dir.parent / options["names"]):
        if candidate.is_file():
            return read_names(candidate), top
    raise TdnError(f"{path}: names file '{options['names']}' not found (looked in the working "
                   f"directory, {data_dir} and {data_dir.parent})")
