"""Launching a kernel of a CPU-compiled library: arguments checked against the kernel's own
parameter types, the grid run under one or several schedules, faults and races reported as
KernelError naming the kernel."""

from __future__ import annotations

import ctypes
import itertools
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from tdn.backends.cuda.interpreter.memory import DeviceArray


class KernelError(RuntimeError):
    """A launch the interpreter stopped: a fault, a race between schedules, a barrier mismatch."""


class LaunchConfig(ctypes.Structure):  # execution.h's tdn::LaunchConfig
    _fields_ = [("grid", ctypes.c_uint * 3), ("block", ctypes.c_uint * 3), ("thread_order", ctypes.c_int),
                ("blocks_reversed", ctypes.c_int), ("seed", ctypes.c_uint64), ("source_name", ctypes.c_char_p)]


@dataclass(frozen=True)
class Schedule:
    """An order of execution: how a block's threads take turns between barriers, and block order."""

    name: str
    thread_order: int  # 0 forward, 1 reversed, 2 shuffled every round, 3 the last warp first
    blocks_reversed: bool


SCHEDULES = (Schedule("threads forward", 0, False), Schedule("threads reversed, blocks reversed", 1, True),
             Schedule("threads shuffled", 2, False), Schedule("last warp ahead, blocks reversed", 3, True))
_lock = threading.Lock()  # launches share the libraries' static state (shared memory, fibers)
_rotation = itertools.count()


@cache
def _library(path: Path) -> ctypes.CDLL:
    return ctypes.CDLL(str(path))


def _dim3(value: tuple[int, ...]) -> tuple[int, int, int]:
    dims = tuple(int(v) for v in value) + (1,) * (3 - len(value))
    if len(dims) != 3 or min(dims) < 1:
        raise KernelError(f"launch dimensions must be 1 to 3 positive numbers, got {value}")
    x, y, z = dims
    return x, y, z


def _arguments(entry: str, signature: str, args: tuple) -> tuple[list, list[DeviceArray]]:
    if len(args) != len(signature):
        raise KernelError(f"{entry}: takes {len(signature)} arguments, the launch gives {len(args)}")
    values: list = []
    arrays: list[DeviceArray] = []
    for index, (code, arg) in enumerate(zip(signature, args, strict=True)):
        if code == "p":
            if not isinstance(arg, DeviceArray):
                raise KernelError(f"{entry}: argument {index} is a pointer; got {type(arg).__name__}")
            values.append(ctypes.c_void_p(arg.ptr))
            arrays.append(arg)
        elif code == "i":
            if not isinstance(arg, np.int32):
                raise KernelError(f"{entry}: argument {index} is an int; got {type(arg).__name__} (pass np.int32)")
            values.append(ctypes.c_int32(int(arg)))
        elif code == "f":
            if not isinstance(arg, np.float32):
                raise KernelError(f"{entry}: argument {index} is a float; got {type(arg).__name__} "
                                  "(pass np.float32)")
            values.append(ctypes.c_float(float(arg)))
        else:
            raise KernelError(f"{entry}: argument {index} has a type the interpreter cannot pass")
    return values, arrays


def launch(library: Path, entry: str, grid: tuple[int, ...], block: tuple[int, ...], args: tuple,
           every_schedule: bool) -> None:
    """Run `entry` over the grid. every_schedule: under each of SCHEDULES, from the same inputs,
    requiring bit-identical memory afterwards; else under one schedule, the next in turn."""
    lib = _library(library)
    try:
        function = getattr(lib, f"tdn_launch_{entry}")
        describe = getattr(lib, f"tdn_signature_{entry}")
    except AttributeError:
        raise KernelError(f"{library.name} has no kernel {entry!r}") from None
    describe.restype = ctypes.c_char_p
    values, arrays = _arguments(entry, describe().decode(), args)
    argv = (ctypes.c_void_p * len(values))(*(ctypes.addressof(v) for v in values))
    config = LaunchConfig((ctypes.c_uint * 3)(*_dim3(grid)), (ctypes.c_uint * 3)(*_dim3(block)), 0, 0, 0,
                          entry.encode())
    distinct = list({a.allocation.base: a for a in arrays}.values())
    with _lock:
        if not every_schedule:
            schedule = SCHEDULES[next(_rotation) % len(SCHEDULES)]
            _run(function, entry, config, argv, schedule, 0x5EED, distinct)
            return
        before = [a.view().copy() for a in distinct]
        first: list[np.ndarray] = []
        for number, schedule in enumerate(SCHEDULES):
            for array, saved in zip(distinct, before, strict=True):
                np.copyto(array.view(), saved)
            _run(function, entry, config, argv, schedule, 0x5EED + 7919 * number, distinct)
            after = [a.view().copy() for a in distinct]
            if not first:
                first = after
                continue
            for index, (one, other) in enumerate(zip(first, after, strict=True)):
                bits = np.dtype(f"u{one.dtype.itemsize}")  # NaNs compare by their bits
                differ = one.view(bits) != other.view(bits)
                if differ.any():
                    at = int(np.flatnonzero(differ.ravel())[0])
                    raise KernelError(
                        f"{entry}: results depend on the schedule (a race, or a read of uninitialised shared "
                        f"memory): buffer {index} of shape {one.shape} differs at element {at} between "
                        f"'{SCHEDULES[0].name}' ({one.ravel()[at]!r}) and '{schedule.name}' ({other.ravel()[at]!r})")


def _run(function, entry: str, config: LaunchConfig, argv, schedule: Schedule, seed: int,
         arrays: list[DeviceArray]) -> None:
    config.thread_order = schedule.thread_order
    config.blocks_reversed = int(schedule.blocks_reversed)
    config.seed = seed
    error = ctypes.create_string_buffer(1024)
    fault = (ctypes.c_uint64 * 2)()
    result = function(ctypes.byref(config), argv, error, ctypes.sizeof(error), fault)
    message = error.value.decode(errors="replace")
    if result == 2:
        raise KernelError(_describe_fault(entry, message, fault[0], bool(fault[1]), arrays))
    if result != 0:
        raise KernelError(message)
    for index, array in enumerate(arrays):
        if not array.allocation.canary_intact():
            raise KernelError(f"{entry}: wrote before the start of buffer {index} (shape {array.shape})")


def _describe_fault(entry: str, message: str, address: int, write: bool, arrays: list[DeviceArray]) -> str:
    access = "write" if write else "read"
    for index, array in enumerate(arrays):
        where = array.allocation.guard_of(address)
        if where is not None:
            return (f"{entry}: out-of-bounds {access} {where} of buffer {index} (shape {array.shape}); "
                    f"{message.split(': ', 1)[1]}")
    return f"{message}: an invalid {access} (outside every buffer of the launch, or a thread stack overflow)"
