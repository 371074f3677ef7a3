"""Device memory of the interpreter: each allocation ends at an inaccessible guard page, and the
rest of its first page before the data holds a canary, so that a kernel reading past either end
reads a fault or NaNs, and one writing before the start is caught after the launch."""

from __future__ import annotations

import ctypes
import mmap
import weakref
from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
PAGE = mmap.PAGESIZE
PROT_NONE = 0  # <sys/mman.h>; the mmap module names only PROT_READ, PROT_WRITE and PROT_EXEC
CANARY = 0x7FA5A5A5  # a signalling NaN: arithmetic on a value read from before the data gives NaN


@dataclass(frozen=True)
class Flags:
    c_contiguous: bool = True


class Allocation:
    """`nbytes` of memory between a leading page (canary, then guard) and a trailing guard page."""

    def __init__(self, nbytes: int):
        pages = max(1, -(-nbytes // PAGE))
        self.size = (pages + 2) * PAGE
        base = _libc.mmap(None, self.size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                          -1, 0)
        if base in (None, ctypes.c_void_p(-1).value):
            raise MemoryError(f"interpreter: cannot map {self.size} bytes of device memory")
        self.base = base
        self._unmap = weakref.finalize(self, _libc.munmap, base, self.size)
        self.end = base + self.size - PAGE  # the trailing guard page starts here
        self.ptr = self.end - nbytes
        self.nbytes = nbytes
        self.canary_start = base + PAGE
        for guard in (base, self.end):
            if _libc.mprotect(guard, PAGE, PROT_NONE) != 0:
                raise OSError(ctypes.get_errno(), "interpreter: mprotect of a guard page failed")
        self._canary().fill(CANARY)

    def _canary(self) -> np.ndarray:
        count = (self.ptr - self.canary_start) // 4
        return np.ctypeslib.as_array((ctypes.c_uint32 * count).from_address(self.canary_start))

    def canary_intact(self) -> bool:
        return bool((self._canary() == CANARY).all())

    def guard_of(self, address: int) -> str | None:
        """Where a faulting address lies relative to this allocation, if in one of its guard pages."""
        if self.end <= address < self.end + PAGE:
            return f"{address - self.end} bytes past the end"
        if self.base <= address < self.base + PAGE:
            return f"{self.ptr - address} bytes before the start"
        return None


class DeviceArray:
    """An array in interpreter device memory (float32 by default): shape, dtype, flags and a pointer,
    like the part of a CuPy array the backend's host code reads. Its values move only through the
    device."""

    def __init__(self, shape: tuple[int, ...], dtype: DTypeLike = np.float32):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.size = int(np.prod(self.shape, dtype=np.int64))
        self.nbytes = self.dtype.itemsize * self.size
        self.flags = Flags()
        self.allocation = Allocation(self.nbytes)
        self.ptr = self.allocation.ptr

    def bytes(self) -> np.ndarray:
        """The memory as a flat uint8 array sharing it (for the device layer only)."""
        if self.nbytes == 0:
            return np.empty(0, np.uint8)
        return np.ctypeslib.as_array((ctypes.c_uint8 * self.nbytes).from_address(self.ptr))

    def view(self) -> np.ndarray:
        """The values, as a NumPy array sharing the memory (for the device layer only)."""
        return self.bytes().view(self.dtype).reshape(self.shape)
