"""Argument types shared by subcommands."""

from __future__ import annotations

import argparse
import re

# Plain ASCII digits ('²'.isdigit() is true), few enough for any count tdn takes.
_COUNT = re.compile(r"[0-9]{1,12}")


def parse_size(text: str) -> tuple[int, int]:
    """'298x224' -> (width, height)."""
    width, sep, height = text.lower().partition("x")
    if not sep or not _COUNT.fullmatch(width) or not _COUNT.fullmatch(height) or int(width) < 1 or int(height) < 1:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 224x224, got '{text}'")
    return int(width), int(height)


def positive_int(text: str) -> int:
    if not _COUNT.fullmatch(text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return int(text)
