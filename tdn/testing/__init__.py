"""Tools to check that backends agree: hypothesis strategies (tdn.testing.strategies), a float64
reference backend (tdn.testing.reference) and the conformance check a plugin author runs:

    from tdn.testing import check_backend
    check_backend("my-backend")          # raises ConformanceError naming the layer and input

The reference backend is a built-in plugin and must import without hypothesis (a test-only
dependency), so the modules that need hypothesis are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tdn.testing.tolerances import TOLERANCES

if TYPE_CHECKING:
    from tdn.testing.conformance import ConformanceError, check_backend
else:
    def __getattr__(name: str) -> object:
        if name in ("check_backend", "ConformanceError"):
            from tdn.testing import conformance

            return getattr(conformance, name)
        raise AttributeError(f"module 'tdn.testing' has no attribute {name!r}")


__all__ = ["TOLERANCES", "ConformanceError", "check_backend"]
