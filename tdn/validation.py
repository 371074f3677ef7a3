"""Labelled images and accuracy: what `tdn valid` computes.

A label comes from an explicit CSV (`path,class`), from the image's folder
(`DIR/<class>/...`), or from Darknet's rule: the first label name that occurs anywhere in
the path. Darknet's rule guesses; tdn reports each path where it matched more than one
name (ImageNet's short names hold "crane" twice, and "cat" occurs inside "wildcat").
A class is a name from the labels list or a 0-based index; a name listed twice is
ambiguous and must be given by index.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tdn.pipeline import IMAGE_EXTENSIONS, InputError, images_under

RULES = ("csv", "folder", "darknet")


@dataclass(frozen=True)
class Ambiguity:
    path: str
    matches: tuple[int, ...]  # every label index whose name occurs in the path


class ClassIndex:
    """Label names -> indices, refusing names that stand for more than one class."""

    def __init__(self, names: list[str]):
        self.names = names
        self._by_name: dict[str, list[int]] = {}
        for index, name in enumerate(names):
            self._by_name.setdefault(name, []).append(index)

    def index(self, text: str, where: str) -> int:
        text = text.strip()
        if re.fullmatch(r"[0-9]{1,18}", text):
            if int(text) >= len(self.names):
                raise InputError(f"{where}: class index {text} is out of range (0..{len(self.names) - 1})")
            return int(text)
        found = self._by_name.get(text)
        if not found:
            raise InputError(f"{where}: class '{text}' is not in the labels list")
        if len(found) > 1:
            raise InputError(f"{where}: class '{text}' names classes {' and '.join(map(str, found))}; "
                             f"give the index instead")
        return found[0]


def from_csv(list_file: str, text: str, classes: ClassIndex) -> list[tuple[str, int]]:
    """`path,class` rows; a first row reading `path,class` is a header."""
    labelled = []
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip():
            continue
        if number == 1 and [cell.strip().lower() for cell in row] == ["path", "class"]:
            continue
        if len(row) != 2:
            raise InputError(f"{list_file}:{number}: expected 'path,class', got {len(row)} field(s)")
        labelled.append((row[0].strip(), classes.index(row[1], f"{list_file}:{number}")))
    return labelled


FOLDER_LAYOUT = "DIR/<class>/<image>, <class> a label name or a 0-based index"


def from_folders(root: str, classes: ClassIndex) -> list[tuple[str, int]]:
    """Every image under root/<class>/ (recursively, hidden files and folders skipped),
    labelled by <class>; sorted."""
    if not Path(root).is_dir():
        raise InputError(f"{root}: no such folder; tdn valid expects {FOLDER_LAYOUT}")
    entries = [path for path in Path(root).iterdir() if not path.name.startswith(".")]
    folders = sorted(path for path in entries if path.is_dir())
    loose = sorted(path.name for path in entries if path.suffix.lower() in IMAGE_EXTENSIONS)
    if loose:
        raise InputError(f"{root}: holds images outside class folders ({loose[0]}, ...); tdn valid "
                         f"expects {FOLDER_LAYOUT} (or --list FILE with path,class rows)")
    if not folders:
        raise InputError(f"{root}: no class folders; tdn valid expects {FOLDER_LAYOUT}")
    labelled = []
    for folder in folders:
        label = classes.index(folder.name, str(folder))
        labelled += [(path, label) for path in images_under(folder)]
    return labelled


def from_parent_folders(paths: list[str], classes: ClassIndex) -> list[tuple[str, int]]:
    return [(path, classes.index(Path(path).parent.name, path)) for path in paths]


def darknet_rule(paths: list[str], names: list[str]) -> tuple[list[tuple[str, int]], list[str],
                                                                list[Ambiguity]]:
    """Darknet's validate_classifier: the first name contained in the path. Returns the
    labelled paths, the paths no name matched, and the paths more than one name matched."""
    labelled, unmatched, ambiguous = [], [], []
    for path in paths:
        matches = tuple(index for index, name in enumerate(names) if name and name in path)
        if not matches:
            unmatched.append(path)
            continue
        labelled.append((path, matches[0]))
        if len(matches) > 1:
            ambiguous.append(Ambiguity(path, matches))
    return labelled, unmatched, ambiguous


@dataclass
class Tally:
    """Top-1 and top-5 hits, overall and per true class."""

    classes: int
    images: np.ndarray = field(init=False)
    top1: np.ndarray = field(init=False)
    top5: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.images, self.top1, self.top5 = (np.zeros(self.classes, np.int64) for _ in range(3))

    def add(self, label: int, probabilities: np.ndarray) -> None:
        # Darknet's top_k: ties go to the lower index (a stable sort of the negated scores).
        best = np.argsort(-probabilities, kind="stable")[:5]
        self.images[label] += 1
        self.top1[label] += int(best[0] == label)
        self.top5[label] += int(label in best)

    @property
    def total(self) -> int:
        return int(self.images.sum())

    def accuracy(self) -> tuple[float, float]:
        total = max(self.total, 1)
        return float(self.top1.sum()) / total, float(self.top5.sum()) / total
