"""Printing classification results in Darknet's formats and as JSON lines."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import TextIO

FORMATS = ("darknet", "darknet-master", "json")


@dataclass(frozen=True)
class Result:
    image: str
    seconds: float
    top: list[tuple[int, float]]  # (class index, probability), best first


def label(index: int, names: list[str] | None) -> str:
    return names[index] if names is not None else str(index)


def write_result(result: Result, names: list[str] | None, fmt: str,
                 out: TextIO | None = None, err: TextIO | None = None) -> None:
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
        print(json.dumps(record), file=out)
    else:
        raise ValueError(f"unknown format {fmt}")
