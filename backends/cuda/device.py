"""The device layer: everything the CUDA backend asks of a GPU, in one small interface with two
implementations. `CupyDevice` drives a real GPU through CuPy; `InterpretedDevice` runs the same
kernels/*.cu text on the CPU (TDN_CUDA_INTERPRET=1, see interpreter/). The plan, weight packing
and upload, launchers and program use only this layer, so interpret mode checks all of them; what
it cannot check is this layer's CuPy half.

Module loading and raw launch (`launch`), device memory (`empty`, `upload`, `download`: of a
given dtype, float32 unless said: activations may be float16 and input pixels uint8), copies
(`copy_in`, `copy_out`, `copy2d`, on the current stream), streams (`stream`), graph capture
(`capture`), pinned host memory (`pinned`), and for `tdn tune` the device's `name` and a timer
(`seconds_per_run`).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from functools import cache
from typing import Any, Protocol

import numpy as np
from numpy.typing import DTypeLike

# The device name of the interpreter: tuning tables measured under it are marked as such.
INTERPRETER_NAME = "tdn CUDA interpreter (CPU)"
_HOST_TO_DEVICE = 1  # cudaMemcpyHostToDevice
_DEVICE_TO_HOST = 2
_DEVICE_TO_DEVICE = 3


def interpret_mode() -> str | None:
    """TDN_CUDA_INTERPRET: unset, "" or "0" off; "check" runs every launch under every schedule
    (tests); any other value runs each launch once."""
    value = os.environ.get("TDN_CUDA_INTERPRET", "").strip()
    return None if value in ("", "0") else value


class Graph(Protocol):
    def launch(self, stream: Any) -> None: ...


class Device(Protocol):
    interpreted: bool

    def launch(self, file: str, entry: str, grid: tuple[int, ...], block: tuple[int, ...], args: tuple,
               variant: str = "") -> None: ...
    def name(self) -> str: ...
    def seconds_per_run(self, run: Callable[[], None], repeats: int) -> float: ...
    def empty(self, shape: tuple[int, ...], dtype: DTypeLike = np.float32) -> Any: ...
    def upload(self, host: np.ndarray, dtype: DTypeLike = np.float32) -> Any: ...
    def download(self, array: Any) -> np.ndarray: ...
    def copy_in(self, array: Any, host: np.ndarray) -> None: ...
    def copy_out(self, host: np.ndarray, array: Any) -> None: ...
    def copy2d(self, dst: Any, dst_offset: int, dst_pitch: int, src: Any, src_offset: int, src_pitch: int,
               width: int, rows: int) -> None: ...
    def pinned(self, shape: tuple[int, ...], dtype: DTypeLike = np.float32) -> np.ndarray: ...
    def stream(self) -> Any: ...
    def capture(self, stream: Any, record: Callable[[], None]) -> Graph: ...


@cache
def device() -> Device:
    """The device of this process: interpreted when TDN_CUDA_INTERPRET asks for it."""
    mode = interpret_mode()
    if mode is not None:
        return InterpretedDevice(every_schedule=mode == "check")
    return CupyDevice()


def _check_copy(array, host: np.ndarray) -> None:
    if host.dtype != array.dtype or tuple(host.shape) != tuple(array.shape) or not host.flags.c_contiguous:
        raise ValueError(f"copy: expected a C-contiguous {array.dtype} host array of shape {tuple(array.shape)}, "
                         f"got {host.dtype} {tuple(host.shape)}")


class CupyDevice:
    interpreted = False

    def __init__(self):
        import cupy

        self.cupy = cupy

    @cache  # noqa: B019 (one device per process, kept for its life)
    def _module(self, file: str, variant: str):
        from tdn.backends.cuda import kernels

        return self.cupy.RawModule(code=kernels.kernel_source(file), options=kernels.compile_options(file, variant))

    def launch(self, file, entry, grid, block, args, variant=""):
        self._module(file, variant).get_function(entry)(tuple(grid), tuple(block), tuple(args))

    def name(self):
        return str(self.cupy.cuda.runtime.getDeviceProperties(0)["name"].decode())

    def seconds_per_run(self, run, repeats):
        """Mean GPU time of `run` (launches on the current stream) over `repeats` back-to-back runs,
        by CUDA events around them all."""
        start, end = self.cupy.cuda.Event(), self.cupy.cuda.Event()
        start.record()
        for _ in range(repeats):
            run()
        end.record()
        end.synchronize()
        return self.cupy.cuda.get_elapsed_time(start, end) / 1e3 / repeats

    def empty(self, shape, dtype=np.float32):
        return self.cupy.empty(shape, dtype)

    def upload(self, host, dtype=np.float32):
        return self.cupy.asarray(np.ascontiguousarray(host, dtype))

    def download(self, array):
        return array.get()

    def _stream_ptr(self) -> int:
        return self.cupy.cuda.get_current_stream().ptr

    def copy_in(self, array, host):
        _check_copy(array, host)
        self.cupy.cuda.runtime.memcpyAsync(array.data.ptr, host.ctypes.data, array.nbytes, _HOST_TO_DEVICE,
                                           self._stream_ptr())

    def copy_out(self, host, array):
        _check_copy(array, host)
        self.cupy.cuda.runtime.memcpyAsync(host.ctypes.data, array.data.ptr, array.nbytes, _DEVICE_TO_HOST,
                                           self._stream_ptr())

    def copy2d(self, dst, dst_offset, dst_pitch, src, src_offset, src_pitch, width, rows):
        self.cupy.cuda.runtime.memcpy2DAsync(dst.data.ptr + dst_offset, dst_pitch, src.data.ptr + src_offset,
                                             src_pitch, width, rows, _DEVICE_TO_DEVICE, self._stream_ptr())

    def pinned(self, shape, dtype=np.float32):
        import cupyx

        return cupyx.empty_pinned(shape, dtype)

    def stream(self):
        # Capture needs a stream other than the legacy default one.
        return self.cupy.cuda.Stream(non_blocking=True)

    def capture(self, stream, record):
        stream.begin_capture()
        record()
        return stream.end_capture()


class _Stream:
    """Work on the interpreter's device runs when issued, so a stream only orders nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def synchronize(self) -> None:
        pass


class _RecordedGraph:
    """A captured sequence of device operations, replayed in order."""

    def __init__(self, operations: list[Callable[[], None]]):
        self.operations = operations

    def launch(self, stream) -> None:
        for operation in self.operations:
            operation()


class InterpretedDevice:
    """Kernels compiled for the CPU and run under the interpreter's execution model; device memory
    guarded, and new allocations filled with NaN (uninitialised, as cupy.empty's)."""

    interpreted = True

    def __init__(self, every_schedule: bool, sources: dict[str, str] | None = None):
        self.every_schedule = every_schedule
        self.sources = sources or {}  # kernel texts in place of kernels/*.cu (tests plant bugs in copies)
        self._recording: list[Callable[[], None]] | None = None

    def _issue(self, operation: Callable[[], None]) -> None:
        if self._recording is not None:
            self._recording.append(operation)
        else:
            operation()

    @cache  # noqa: B019
    def _library(self, file: str, variant: str):
        from tdn.backends.cuda import kernels
        from tdn.backends.cuda.interpreter import build

        source = self.sources.get(file) or kernels.kernel_source(file)
        return build.compile_source(source, file, kernels.KERNELS[file], kernels.defines(file, variant))

    def launch(self, file, entry, grid, block, args, variant=""):
        from tdn.backends.cuda import kernels
        from tdn.backends.cuda.interpreter import launcher

        library = self._library(file, variant)

        def run() -> None:
            try:
                launcher.launch(library, entry, grid, block, tuple(args), self.every_schedule)
            except launcher.KernelError as error:  # lines of the inlined source, as file:line
                where = re.sub(r"\bline (\d+)", lambda m: kernels.source_line(file, int(m.group(1))), str(error))
                raise launcher.KernelError(where) from None

        self._issue(run)

    def name(self):
        return INTERPRETER_NAME

    def seconds_per_run(self, run, repeats):
        """Mean CPU time of `run` under the interpreter: says nothing about a GPU."""
        start = time.perf_counter()
        for _ in range(repeats):
            run()
        return (time.perf_counter() - start) / repeats

    def empty(self, shape, dtype=np.float32):
        from tdn.backends.cuda.interpreter.memory import DeviceArray

        array = DeviceArray(tuple(shape), dtype)
        if array.dtype.kind == "f":
            array.view().fill(np.nan)
        else:
            array.view().fill(np.iinfo(array.dtype).max)
        return array

    def upload(self, host, dtype=np.float32):
        host = np.ascontiguousarray(host, dtype)
        array = self.empty(host.shape, host.dtype)
        np.copyto(array.view(), host)
        return array

    def download(self, array):
        return array.view().copy()

    def copy_in(self, array, host):
        _check_copy(array, host)
        self._issue(lambda: np.copyto(array.view(), host))

    def copy_out(self, host, array):
        _check_copy(array, host)
        self._issue(lambda: np.copyto(host, array.view()))

    def copy2d(self, dst, dst_offset, dst_pitch, src, src_offset, src_pitch, width, rows):
        for name, array, offset, pitch in (("source", src, src_offset, src_pitch),
                                           ("destination", dst, dst_offset, dst_pitch)):
            if rows and (offset < 0 or offset + (rows - 1) * pitch + width > array.nbytes or width > pitch):
                raise ValueError(f"copy2d: the {name} rows overrun its {array.nbytes}-byte buffer")

        def copy() -> None:
            source = src.bytes()
            target = dst.bytes()
            for row in range(rows):
                target[dst_offset + row * dst_pitch:][:width] = source[src_offset + row * src_pitch:][:width]

        self._issue(copy)

    def pinned(self, shape, dtype=np.float32):
        return np.empty(shape, dtype)

    def stream(self):
        return _Stream()

    def capture(self, stream, record):
        self._recording = []
        try:
            record()
            return _RecordedGraph(self._recording)
        finally:
            self._recording = None
