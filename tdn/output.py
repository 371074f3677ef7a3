"""Printing classification results in Darknet's formats, as JSON lines and as CSV.

JSON is written with allow_nan=False: a NaN would make the file unreadable to strict JSON
parsers, and the pipeline reports an image whose output is not finite as skipped instead."""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tdn.files import atomic_file

FORMATS = ("darknet", "darknet-master", "json", "jsonl", "csv")
CSV_HEADER = ("image", "rank", "index", "name", "probability", "error")


@dataclass(frozen=True)
class Result:
    image: str
    seconds: float
    top: list[tuple[int, float]]  # (class index, probability), best first


def label(index: int, names: list[str] | None) -> str:
    return names[index] if names is not None else str(index)


def write_result(result: Result, names: list[str] | None, fmt: str,
                 out: IO[str] | None = None, err: IO[str] | None = None) -> None:
    out, err = out or sys.stdout, err or sys.stderr
    if fmt == "darknet":
        # The 2016 `darknet classifier predict`, as on the Tiny Darknet page.
        print(f"{result.image}: Predicted in {result.seconds:f} seconds.", file=out)
        for index, p in result.top:
            print(f"{label(index, names)}: {p:f}", file=out)
    elif fmt == "darknet-master":
        # Today's `darknet classify`: the timing goes to stderr, the classes to stdout.
        print(f"{result.image}: Predicted in {result.seconds:f} seconds.", file=err)
        for index, p in result.top:
            print(f"{p * 100:5.2f}%: {label(index, names)}", file=out)
    elif fmt == "json":
        record = {
            "image": result.image,
            "seconds": result.seconds,
            "top": [{"index": index, "name": label(index, names) if names else None, "probability": p}
                    for index, p in result.top],
        }
        print(json.dumps(record, allow_nan=False), file=out)
    elif fmt == "jsonl":
        print(json.dumps(_jsonl_record(result, names), allow_nan=False), file=out)
    elif fmt == "csv":
        rows = csv.writer(out, lineterminator="\n")
        for rank, (index, p) in enumerate(result.top, start=1):
            rows.writerow((result.image, rank, index, label(index, names), repr(p), ""))
    else:
        raise ValueError(f"unknown format {fmt}")


def _jsonl_record(result: Result, names: list[str] | None) -> dict:
    return {"image": result.image, "seconds": result.seconds,
            "top": [{"rank": rank, "index": index, "name": label(index, names), "probability": p}
                    for rank, (index, p) in enumerate(result.top, start=1)]}


def write_header(fmt: str, out: IO[str]) -> None:
    """What a format prints before the first result: the CSV column names."""
    if fmt == "csv":
        csv.writer(out, lineterminator="\n").writerow(CSV_HEADER)


def write_skipped(image: str, error: str, fmt: str, out: IO[str]) -> None:
    """jsonl and csv keep a record of each skipped image, so their rows match the input;
    the Darknet formats and json print nothing (the CLI reports skips on stderr)."""
    if fmt == "jsonl":
        print(json.dumps({"image": image, "error": error}), file=out)
    elif fmt == "csv":
        csv.writer(out, lineterminator="\n").writerow((image, "", "", "", "", error))


@contextlib.contextmanager
def atomic_output(path: str | Path | None) -> Iterator[IO[str]]:
    """stdout when path is None; otherwise a file that appears at `path` only when the block
    succeeds (tdn.files.atomic_file), so readers never see half a result file."""
    if path is None:
        yield sys.stdout
        return
    with atomic_file(path) as handle:
        yield handle
