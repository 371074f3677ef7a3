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

from tdn.errors import CfgError

_INT = re.compile(r"[+-]?\d+")


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
            f"{self.where(option.line)}: [{self.header}] option '{key}': "
            f"expected {expected}, got '{option.value}'"
        )

    def int(self, key: str, default: int, *, minimum: int | None = None) -> int:
        option = self._raw(key)
        if option is None:
            return default
        if not _INT.fullmatch(option.value):
            raise self._bad(key, option, "an integer")
        value = int(option.value)
        if minimum is not None and value < minimum:
            raise self._bad(key, option, f"an integer >= {minimum}")
        return value

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
            raise CfgError(f"{self.where(option.line)}: [{self.header}] option '{key}': {reason}")

    def accept(self, *keys: str) -> None:
        """Mark training-only options as known so they are not reported."""
        for key in keys:
            self._raw(key)

    def unused(self) -> list[tuple[str, Option]]:
        return [(key, option) for key, option in self.options.items() if not option.used]


def parse_cfg_text(text: str, source: str = "<cfg>") -> list[Section]:
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.replace(" ", "").replace("\t", "").replace("\r", "")
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]") or len(line) < 3:
                raise CfgError(f"{source}:{number}: expected a section header like "
                               f"[convolutional], got '{raw.strip()}'")
            sections.append(Section(line[1:-1].lower(), number, source))
            continue
        if not sections:
            raise CfgError(f"{source}:{number}: option before the first [section]: '{raw.strip()}'")
        key, sep, value = line.partition("=")
        if not sep or not key or not value:
            raise CfgError(f"{source}:{number}: expected key=value, got '{raw.strip()}'")
        section = sections[-1]
        if key in section.options:
            # Darknet uses the first occurrence and ignores the rest.
            warnings.warn(
                f"{source}:{number}: [{section.header}] option '{key}' repeated; "
                f"using line {section.options[key].line} as Darknet does",
                CfgWarning,
                stacklevel=2,
            )
            continue
        section.options[key] = Option(value, number)
    if not sections:
        raise CfgError(f"{source}: no sections found; a Darknet cfg starts with [net]")
    return sections


def read_cfg(path: str | Path) -> list[Section]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CfgError(f"{path}: cannot read cfg: {error.strerror or error}") from None
    # Darknet reads bytes; latin-1 maps every byte so no file fails to decode.
    return parse_cfg_text(data.decode("latin-1"), str(path))


def warn_unused(section: Section) -> None:
    for key, option in section.unused():
        warnings.warn(
            f"{section.where(option.line)}: [{section.header}] unknown option '{key}' ignored",
            CfgWarning,
            stacklevel=2,
        )
