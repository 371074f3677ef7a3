"""Shared fixtures: where ../shared is, and hermetic plugin loading."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings
from tdn.backends.cuda.backend import gpu_unavailable_reason, interpreter_unavailable_reason

import tdn.plugins
from tdn.plugins import BackendRegistry

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TDN_SHARED", REPO.parent / "shared")) / "darknet"
REFERENCE = SHARED / "reference"
# A few hundred examples per property in CI, which keeps the property suite
# (tests/test_backends_agree.py) within its five minutes on a 2-core machine.
CI_EXAMPLES = 200

# Hypothesis loads its "ci" profile when CI is set; no deadlines, since first calls
# compile kernels or warm caches.
settings.register_profile("ci", settings.get_profile("ci"), deadline=None, max_examples=CI_EXAMPLES)
settings.register_profile("dev", deadline=None, max_examples=50)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


# Without a GPU, the tests marked gpu run the CUDA backend interpreted on the CPU
# (TDN_CUDA_INTERPRET=check: every launch under every schedule); on a GPU, on the hardware.
CUDA_INTERPRETED = bool(os.environ.get("TDN_CUDA_INTERPRET", "").strip("0 ")) or gpu_unavailable_reason() is not None


# Why the gpu tests cannot run here: no GPU and no C++ compiler for the interpreter.
CUDA_REASON = interpreter_unavailable_reason() if CUDA_INTERPRETED else None


@pytest.fixture(scope="module")
def cuda_device():
    """The CUDA device the gpu tests use: the GPU, or the interpreter where there is none."""
    from tdn.backends.cuda.device import device

    with pytest.MonkeyPatch.context() as patch:
        if CUDA_INTERPRETED and not os.environ.get("TDN_CUDA_INTERPRET", "").strip("0 "):
            patch.setenv("TDN_CUDA_INTERPRET", "check")
        device.cache_clear()
        tdn.plugins.registry.cache_clear()
        yield device()
        device.cache_clear()
        tdn.plugins.registry.cache_clear()


@pytest.fixture
def one_schedule(cuda_device):
    """Whole networks: each launch under one schedule, the next in turn (every schedule of every
    launch would take minutes on the CPU); kernel tests keep every schedule of every launch."""
    if not cuda_device.interpreted:
        yield
        return
    saved = cuda_device.every_schedule
    cuda_device.every_schedule = False
    yield
    cuda_device.every_schedule = saved


@pytest.fixture(scope="session")
def shared() -> Path:
    """../shared/darknet; its absence is a failure, not a skip: CI always has it."""
    assert SHARED.is_dir(), f"expected the shared test data at {SHARED}"
    return SHARED


@pytest.fixture(scope="session", autouse=True)
def no_entry_points():
    """Hermetic plugin loading: under pytest the process registry holds only tdn's built-in
    plugins; a test that wants the installed third-party ones asks for `installed_backends`."""
    real = tdn.plugins.make_plugin_manager
    tdn.plugins.registry.cache_clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tdn.plugins, "make_plugin_manager",
                      lambda plugins=(), *, entry_points=False: real(plugins, entry_points=entry_points))
        yield
    tdn.plugins.registry.cache_clear()


@pytest.fixture(scope="session")
def installed_backends() -> BackendRegistry:
    """Built-in plugins and every plugin installed under the `tdn` entry-point group."""
    return BackendRegistry(tdn.plugins.make_plugin_manager(entry_points=True))


def hermetic_backends(*plugins: object) -> BackendRegistry:
    """Built-in plugins and the given plugin objects, no entry points."""
    return BackendRegistry(tdn.plugins.make_plugin_manager(plugins, entry_points=False))
