"""The labelled training images: a class-folder tree or a CSV list, checked once up front.

Classes are the tree's folder names, sorted, or for a CSV list the class column's names,
sorted (all-number classes: 0..max). Every image is decoded once before training: an
unreadable one is reported and skipped (counted), and a class left without images, or a
data set with fewer than two classes, is a one-line error. Decoded pixels are kept in memory
up to CACHE_BYTES; beyond that an image is decoded again each time it is drawn.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tdn.errors import ImageError, TdnError
from tdn.image import decode, to_float
from tdn.pipeline import IMAGE_EXTENSIONS, read_list_text
from tdn.validation import ClassIndex, from_csv

CACHE_BYTES = 1 << 30


def _folder_samples(root: Path) -> tuple[list[str], list[tuple[str, int]]]:
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    samples = []
    for label, folder in enumerate(folders):
        images = [str(p) for p in sorted(folder.rglob("*")) if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
        if not images:
            raise TdnError(f"{folder}: empty class folder (no images with a known extension)")
        samples += [(path, label) for path in images]
    return [folder.name for folder in folders], samples


def _csv_names(list_file: str, text: str) -> list[str]:
    found = {row[1].strip() for row in csv.reader(text.splitlines()) if len(row) == 2 and row[1].strip()}
    found.discard("class")  # the optional header row
    if found and all(name.isdigit() for name in found):
        return [str(i) for i in range(max(map(int, found)) + 1)]
    return sorted(found)


@dataclass
class Dataset:
    names: list[str]
    samples: list[tuple[str, int]]
    skipped: int = 0
    _pixels: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, source: str, labels: list[str] | None = None) -> Dataset:
        path = Path(source)
        if path.is_dir():
            names, samples = _folder_samples(path)
            if labels is not None:
                index = ClassIndex(labels)
                samples = [(p, index.index(names[label], str(path / names[label]))) for p, label in samples]
                names = labels
        elif path.is_file():
            text = read_list_text(source)
            names = labels if labels is not None else _csv_names(source, text)
            samples = from_csv(source, text, ClassIndex(names))
        else:
            raise TdnError(f"{source}: no such folder or CSV list")
        dataset = cls(names, samples)
        dataset._check()
        return dataset

    def _check(self) -> None:
        readable, cached = [], 0
        for path, label in self.samples:
            try:
                pixels = decode(path)
            except ImageError as error:
                print(f"tdn: skipped {error}", file=sys.stderr)
                self.skipped += 1
                continue
            readable.append((path, label))
            if cached + pixels.nbytes <= CACHE_BYTES:
                self._pixels[path] = pixels
                cached += pixels.nbytes
        self.samples = readable
        counts = np.bincount([label for _, label in readable], minlength=len(self.names))
        if not readable:
            raise TdnError("no readable training images")
        missing = [self.names[i] for i in np.flatnonzero(counts == 0)]
        if len(self.names) - len(missing) < 2:
            raise TdnError(f"only one class ('{self.names[int(np.argmax(counts))]}') has images: "
                           f"a classifier needs at least two")
        if missing:
            raise TdnError(f"class '{missing[0]}' has no readable images"
                           + (f" (nor do {len(missing) - 1} more)" if len(missing) > 1 else ""))

    def image(self, index: int) -> np.ndarray:
        """Sample `index` as a 3xHxW float32 image in [0, 1] (Darknet's load_image_color)."""
        path = self.samples[index][0]
        pixels = self._pixels.get(path)
        return to_float(decode(path) if pixels is None else pixels)
