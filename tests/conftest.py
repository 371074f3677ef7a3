"""Shared fixtures: where ../shared is, and hermetic plugin loading."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TDN_SHARED", REPO.parent / "shared")) / "darknet"
REFERENCE = SHARED / "reference"

# Hypothesis loads its "ci" profile when CI is set; no deadlines, since first calls
# compile kernels or warm caches.
settings.register_profile("ci", settings.get_profile("ci"), deadline=None)
settings.register_profile("dev", deadline=None, max_examples=50)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def shared() -> Path:
    """../shared/darknet; its absence is a failure, not a skip: CI always has it."""
    assert SHARED.is_dir(), f"expected the shared test data at {SHARED}"
    return SHARED
