"""__shared__ declarations in a kernel source, each followed on its line by a TDN_SHARED
registration (execution.h), so that the interpreter can fill every block's shared memory with
junk. Only the static form `__shared__ T name[...];` inside a function is supported, with an
optional `__align__(n)` after `__shared__`."""

from __future__ import annotations

import re

_DECLARATION = re.compile(r"\b__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s*)?[^;{}()]*?\b(\w+)\s*(?:\[[^\]]*\]\s*)*;")


def register(source: str) -> str:
    return _DECLARATION.sub(lambda m: f"{m.group(0)} TDN_SHARED({m.group(1)})", source)
