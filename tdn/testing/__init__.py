"""Tools to check that backends agree: hypothesis strategies (tdn.testing.strategies), a float64
reference backend (tdn.testing.reference) and the conformance check a plugin author runs:

    from tdn.testing import check_backend
    check_backend("my-backend")          # raises AssertionError naming the layer and input

The reference backend is a built-in plugin and must import without hypothesis (a test-only
dependency), so the modules that need hypothesis are imported on first use.
"""

from __future__ import annotations

from tdn.testing.tolerances import TOLERANCES


def __getattr__(name: str):
    if name == "check_backend":
        from tdn.testing.conformance import check_backend

        return check_backend
    raise AttributeError(f"module 'tdn.testing' has no attribute {name!r}")


__all__ = ["TOLERANCES", "check_backend"]
