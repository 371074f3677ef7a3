"""Reading Darknet's .cfg format into sections of options.

Darknet's own reader deletes every space and tab in a line, skips lines starting with
'#' or ';', starts a section at '[', and otherwise expects key=value. Unlike Darknet,
which guesses (atoi of garbage is 0, an unknown activation becomes ReLU), every value
here is checked and a bad one is a CfgError naming the file and line.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from tdn.errors import CfgError, WrongKindOfFile
from tdn.files import lines_of, read_regular, sniff

_INT = re.compile(r"[+-]?\d+")
# Every section name Darknet knows is a short word.
_HEADER = re.compile(r"[a-z0-9_]{1,40}")
_INT_LIST = re.compile(r"-?\d+(,-?\d+)*")
# Darknet reads every integer option with atoi into a C int.
INT_MAX = 2**31 - 1
SHOWN_CHARS = 60


def shown(text: str) -> str:
    """Text from a file as an error message may quote it: control and non-ASCII bytes escaped,
    cut to SHOWN_CHARS characters, so a binary or very long line stays one short line."""
    escaped = text.encode("unicode_escape").decode("ascii").replace("'", "\\'")
    return escaped if len(escaped) <= SHOWN_CHARS else escaped[:SHOWN_CHARS] + f"... ({len(text)} characters)"


class CfgWarning(UserWarning):
    """An option Darknet would ignore: unknown or repeated keys."""


@dataclass
class Option:
    value: str
    line: int
    used: bool = False


@dataclass
class Section:
    """One [header] block. Typed getters mark options as used and check their values."""

    header: str
    line: int
    source: str
    options: dict[str, Option] = field(default_factory=dict)

    def where(self, line: int | None = None) -> str:
        return f"{self.source}:{self.line if line is None else line}"

    def has(self, key: str) -> bool:
        return key in self.options

    def _raw(self, key: str) -> Option | None:
        option = self.options.get(key)
        if option is not None:
            option.used = True
        return option

    def _bad(self, key: str, option: Option, expected: str) -> CfgError:
        return CfgError(
            f"{self.where(option.line)}: [{self.header}] option '{shown(key)}': "
            f"expected {expected}, got '{shown(option.value)}'"
        )

    def _integer(self, key: str, option: Option, text: str, minimum: int | None) -> int:
        """One integer of an option's value, within Darknet's C int (checked on the digits
        first: int() of thousands of digits is slow, and refused beyond 4300)."""
        if len(text.lstrip("+-").lstrip("0")) > 10 or not -INT_MAX - 1 <= int(text) <= INT_MAX:
            raise self._bad(key, option, f"an integer within a C int (+-{INT_MAX})")
        if minimum is not None and int(text) < minimum:
            raise self._bad(key, option, f"an integer >= {minimum}")
        return int(text)

    def int_list(self, key: str, what: str) -> tuple[int, ...] | None:
        """Comma-separated integers, such as route's layers; None when the key is absent."""
        option = self._raw(key)
        if option is None:
            return None
        if not _INT_LIST.fullmatch(option.value):
            raise self._bad(key, option, what)
        return tuple(self._integer(key, option, text, None) for text in option.value.split(","))

    def int(self, key: str, default: int, *, minimum: int | None = None) -> int:
        option = self._raw(key)
        if option is None:
            return default
        if not _INT.fullmatch(option.value):
            raise self._bad(key, option, "an integer")
        return self._integer(key, option, option.value, minimum)

    def flag(self, key: str, default: bool = False) -> bool:
        option = self._raw(key)
        if option is None:
            return default
        if option.value not in ("0", "1"):
            raise self._bad(key, option, "0 or 1")
        return option.value == "1"

    def float(self, key: str, default: float, *, positive: bool = False) -> float:
        option = self._raw(key)
        if option is None:
            return default
        try:
            value = float(option.value)
        except ValueError:
            raise self._bad(key, option, "a number") from None
        if not math.isfinite(value) or (positive and value <= 0):
            raise self._bad(key, option, "a positive number" if positive else "a finite number")
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        option = self._raw(key)
        if option is None:
            return default
        if option.value not in choices:
            raise self._bad(key, option, "one of " + ", ".join(choices))
        return option.value

    def forbid(self, key: str, reason: str) -> None:
        """Reject an option whose non-default value tdn does not implement."""
        option = self._raw(key)
        if option is not None and option.value not in ("0", ""):
            raise CfgError(f"{self.where(option.line)}: [{self.header}] option '{shown(key)}': {reason}")

    def accept(self, *keys: str) -> None:
        """Mark training-only options as known so they are not reported."""
        for key in keys:
            self._raw(key)

    def unused(self) -> list[tuple[str, Option]]:
        return [(key, option) for key, option in self.options.items() if not option.used]


def parse_cfg_text(text: str, source: str = "<cfg>") -> list[Section]:
    sections: list[Section] = []
    for number, raw in enumerate(lines_of(text), start=1):
        line = raw.replace(" ", "").replace("\t", "").replace("\r", "")
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            header = line[1:-1].lower()
            if not line.endswith("]") or not _HEADER.fullmatch(header):
                raise CfgError(f"{source}:{number}: expected a section header like "
                               f"[convolutional], got '{shown(raw.strip())}'")
            sections.append(Section(header, number, source))
            continue
        if not sections:
            raise CfgError(f"{source}:{number}: option before the first [section]: '{shown(raw.strip())}'")
        key, sep, value = line.partition("=")
        if not sep or not key or not value:
            raise CfgError(f"{source}:{number}: expected key=value, got '{shown(raw.strip())}'")
        section = sections[-1]
        if key in section.options:
            # Darknet uses the first occurrence and ignores the rest.
            warnings.warn(
                f"{source}:{number}: [{shown(section.header)}] option '{shown(key)}' repeated; "
                f"using line {section.options[key].line} as Darknet does",
                CfgWarning,
                stacklevel=2,
            )
            continue
        section.options[key] = Option(value, number)
    if not sections:
        raise CfgError(f"{source}: no sections found; a Darknet cfg starts with [net]")
    return sections


class NotACfgError(CfgError, WrongKindOfFile):
    """A file that is not a cfg at all: an image, a weights file, an archive."""


def read_cfg(path: str | Path) -> list[Section]:
    data = read_regular(path, "cfg", CfgError)
    kind = sniff(data) or ("binary data (a weights file?)" if b"\0" in data[:4096] else None)
    if kind is not None:
        raise NotACfgError(f"{path}: not a Darknet cfg: it looks like {kind}")
    # Darknet reads bytes; latin-1 maps every byte so no file fails to decode.
    return parse_cfg_text(data.decode("latin-1"), str(path))


def warn_unused(section: Section) -> None:
    for key, option in section.unused():
        warnings.warn(
            f"{section.where(option.line)}: [{shown(section.header)}] unknown option '{shown(key)}' ignored",
            CfgWarning,
            stacklevel=2,
        )
