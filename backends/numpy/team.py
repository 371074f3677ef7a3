"""Teams: the calling thread and its helpers, running one plan's work on every core.

A plan gives a team `work(rank)`. `run()` calls it once in every member, the caller being
rank 0, and returns when all of them have finished. Inside `work`, `share(rank, key, count)`
says which of `count` tasks a member runs (tasks that start together, between barriers),
`claim(rank, count)` hands out tasks one at a time to whichever member is free (long tasks,
once a run), and `barrier(rank)` waits until every member has reached the same barrier.

`ThreadTeam` (the default, workers.py) runs the other members on threads. `ProcessTeam`, only
when asked for, forks its helpers (Linux on x86-64: `PROCESSES_AVAILABLE`). Threads share one
interpreter lock, which a thread needs back after every NumPy call; when the other thread holds
it, the thread sleeps, and on a virtual machine whose idle vCPUs halt it wakes tens of
microseconds later. A forked helper has its own interpreter and waits by spinning on shared
memory. Measured on Tiny Darknet 224x224 at batch 1 on 2 cores, in one run: a median of 7.0 ms
with two processes, 13.4 ms with two threads (one core alone: about 10 ms). What several members
write (the plan's layer buffers) must be in shared memory (`memory.shared_zeros`) allocated
before the fork; everything else a helper touches is its own copy-on-write copy. The spin-waits
rely on x86's ordered stores: a buffer's contents are visible to the other processes before the
counter stored after them.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import platform
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tdn.backends.numpy.memory import shared_zeros
from threadpoolctl import ThreadpoolController

PROCESSES_AVAILABLE = (sys.platform == "linux" and hasattr(os, "fork")
                       and platform.machine().lower() in ("x86_64", "amd64"))
SPIN_SECONDS = 0.005  # a helper spins this long for the next run (back-to-back calls), then sleeps
CHECK_EVERY = 256  # spins between checks that the other processes are still there
MESSAGE_BYTES = 1024

# Slots of a ProcessTeam's shared int64 state, then `done` and `arrived`, one per rank.
GENERATION, STOP, FAILED, CLAIMED, PER_RANK = 0, 1, 2, 3, 4

# The BLAS libraries, found at import: a helper must not search the loaded libraries again (that
# takes the dynamic loader's lock, which another thread of the parent may have held at the fork).
BLAS = ThreadpoolController()
_WAKERS: set[int] = set()  # every team's pipe ends that wake its helpers: a new helper closes them


class TeamError(RuntimeError):
    """A helper process failed or disappeared during a run."""


class _Stopped(BaseException):
    """Raised in a helper when its team stops or its parent is gone: the helper exits."""


class ThreadTeam:
    """`size` members: the caller and threads of a pool (`executor(threads)` gives it, at least
    that many threads; default: a pool of the team's own, its threads ending with the team)."""

    def __init__(self, size: int, work: Callable[[int], None],
                 executor: Callable[[int], ThreadPoolExecutor] | None = None):
        self.size, self.work = size, work
        self._executor = executor or self._own_executor
        self._own: ThreadPoolExecutor | None = None
        self._barrier = threading.Barrier(size)
        self._claims: dict[object, Iterator[int]] = {}

    def share(self, rank: int, key: object, count: int) -> Iterator[int]:
        """Tasks claimed one at a time, by whichever member is free (next() on a shared counter is
        atomic under the interpreter lock): a member that another process holds up leaves its work."""
        claim = self._claims.setdefault(key, itertools.count())
        while (index := next(claim)) < count:
            yield index

    def claim(self, rank: int, count: int) -> Iterator[int]:
        return self.share(rank, "claim", count)

    def run(self) -> None:
        self._claims = {}
        pool = self._executor(self.size - 1)
        futures = [pool.submit(self._member, rank) for rank in range(1, self.size)]
        errors = []
        try:
            self._member(0)
        except BaseException as error:  # noqa: BLE001 - raised below, once the others have stopped
            errors.append(error)
        for future in futures:
            try:
                future.result()
            except BaseException as error:  # noqa: BLE001
                errors.append(error)
        self._barrier.reset()
        real = [error for error in errors if not isinstance(error, threading.BrokenBarrierError)]
        if errors:
            raise (real or errors)[0]  # the failure itself, not the members it stopped at a barrier

    def _member(self, rank: int) -> None:
        try:
            self.work(rank)
        except BaseException:
            self._barrier.abort()  # the others stop at their next barrier instead of waiting for ever
            raise

    def barrier(self, rank: int) -> None:
        self._barrier.wait()

    def _own_executor(self, threads: int) -> ThreadPoolExecutor:
        if self._own is None:
            self._own = ThreadPoolExecutor(threads, thread_name_prefix="tdn-team")
            weakref.finalize(self, self._own.shutdown, wait=False)
        return self._own

    def close(self) -> None:
        """End the team's own threads (a pool given to it belongs to its giver)."""
        if self._own is not None:
            self._own.shutdown(wait=True)
            self._own = None


class ProcessTeam:
    """`size` members: the caller and size - 1 forked helper processes, started by the first run.

    A helper that fails makes run() raise TeamError with its message; the team then stops its
    helpers, and the next run starts new ones. Helpers exit when the team is closed or garbage
    collected, or when the parent process is gone.
    """

    def __init__(self, size: int, work: Callable[[int], None],
                 on_start: Callable[[ProcessTeam], None] | None = None):
        self.size, self.work, self.on_start = size, work, on_start
        self._finalizer: weakref.finalize | None = None

    def run(self) -> None:
        if self._finalizer is not None and self.parent != os.getpid():
            raise TeamError("a process team runs only in the process that started it, not in a fork of it")
        if self._finalizer is None or not self._finalizer.alive:
            self._start()
        state = self.state
        generation = state[GENERATION] + 1
        state[CLAIMED] = 0
        state[GENERATION] = generation
        for waker in self.wakers:
            _wake(waker)
        try:
            self.work(0)
            done = state[PER_RANK:PER_RANK + self.size]
            self._spin(lambda: bool((done[1:] == generation).all()))
        except BaseException:
            self.close()
            raise

    def share(self, rank: int, key: object, count: int) -> range:
        """Consecutive tasks, as many for every member as can be, the caller's first and any extra
        to the lower ranks (members that start together would meet at the lock that `claim` takes,
        and one would sleep)."""
        return range(-(-count * rank // self.size), -(-count * (rank + 1) // self.size))

    def claim(self, rank: int, count: int) -> Iterator[int]:
        """Tasks taken one at a time under a lock the processes share: a member that the machine
        holds up leaves its work to the others (measured: static halves of a batch of 32 finished
        20 ms apart on average, of 190)."""
        claimed = self.state[CLAIMED:CLAIMED + 1]
        while True:
            while not self.lock.acquire(timeout=0.1):
                self._check()  # a member killed while it held the lock must not hang the others
            index = int(claimed[0])
            claimed[0] = index + 1
            self.lock.release()
            if index >= count:
                return
            yield index

    def barrier(self, rank: int) -> None:
        arrived = self.state[PER_RANK + self.size:]
        target = arrived[rank] + 1
        arrived[rank] = target
        self._spin(lambda: int(arrived.min()) >= target)

    def close(self) -> None:
        """Stop the helpers (the next run starts new ones)."""
        if self._finalizer is not None:
            self._finalizer()

    def _start(self) -> None:
        if self.on_start is not None:
            self.on_start(self)  # a Network's pool: the helpers of its other plans stop first
        self.state = shared_zeros((PER_RANK + 2 * self.size,), np.int64)
        self.message = shared_zeros((MESSAGE_BYTES,), np.uint8)
        self.lock = multiprocessing.get_context("fork").Lock()
        self.parent = os.getpid()
        self.pids: list[int] = []
        self.wakers: list[int] = []
        # Before the first fork: a fork that fails stops the helpers started before it.
        self._finalizer = weakref.finalize(self, _stop, self.parent, self.state, self.pids, self.wakers)
        try:
            for rank in range(1, self.size):
                wake_read, wake_write = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.close(wake_write)
                    self._serve(rank, wake_read)  # never returns
                os.close(wake_read)
                os.set_blocking(wake_write, False)  # a full pipe already holds wake-ups enough
                _WAKERS.add(wake_write)
                self.pids.append(pid)
                self.wakers.append(wake_write)
        except BaseException:
            self.close()
            raise

    def _serve(self, rank: int, wake_read: int) -> None:
        """A helper's life: wait for a run, do its work, repeat; exit without returning."""
        code = 0
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops the team
            BLAS.limit(limits=1, user_api="blas")  # held for the helper's life
            state, seen = self.state, 0
            while True:
                self._wait_for_run(seen, wake_read)
                seen = int(state[GENERATION])
                self.work(rank)
                state[PER_RANK + rank] = seen
        except _Stopped:
            pass
        except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises it
            text = f"{type(error).__name__}: {error}".encode()[:MESSAGE_BYTES - 1]
            self.message[:len(text)] = np.frombuffer(text, np.uint8)
            self.state[FAILED] = rank
            code = 1
        finally:
            os._exit(code)

    def _wait_for_run(self, seen: int, wake_read: int) -> None:
        """Spin until the parent starts a run after `seen`; after SPIN_SECONDS, sleep on the pipe."""
        state = self.state
        deadline = time.monotonic() + SPIN_SECONDS
        spins = 0
        while state[GENERATION] == seen:
            spins += 1
            if spins % CHECK_EVERY == 0:
                self._check()
                if time.monotonic() > deadline and not os.read(wake_read, 4096):
                    raise _Stopped  # end of file: the parent is gone
        if state[STOP]:
            raise _Stopped

    def _spin(self, ready: Callable[[], bool]) -> None:
        spins = 0
        while not ready():
            spins += 1
            if spins % CHECK_EVERY == 0:
                os.sched_yield()  # releases the interpreter lock too, for the caller's other threads
                self._check()

    def _check(self) -> None:
        """In the parent, raise TeamError if a helper failed or exited; in a helper, stop when told."""
        state = self.state
        if os.getpid() != self.parent:
            if state[STOP] or os.getppid() != self.parent:
                raise _Stopped
            return
        if state[FAILED]:
            text = self.message.tobytes().rstrip(b"\0").decode(errors="replace")
            raise TeamError(f"numpy worker process {int(state[FAILED])} failed: {text}")
        for pid in self.pids:
            try:
                exited = os.waitpid(pid, os.WNOHANG)[0] != 0
            except ChildProcessError:  # reaped already, by a SIGCHLD handler of the application
                exited = True
            if exited:
                self.pids.remove(pid)
                raise TeamError(f"numpy worker process {pid} exited during a run")


def _after_fork_in_child() -> None:
    """In any forked child (a helper, or a multiprocessing worker of the application):"""
    for waker in _WAKERS:
        os.close(waker)  # the helpers must see the end of file when their parent goes, not when this one does
    _WAKERS.clear()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _wake(waker: int) -> None:
    try:
        os.write(waker, b"\0")
    except BlockingIOError:
        pass  # the pipe is full of earlier wake-ups, which will do
    except BrokenPipeError:
        pass  # the helper is gone: the run reports it (_check)


def _stop(owner: int, state: np.ndarray, pids: list[int], wakers: list[int]) -> None:
    """Tell a team's helpers to exit, wake them, and reap them (killed if they do not go within 1 s).

    Only in the process that started them: a forked copy of it (a helper of another team, say,
    where objects that only another thread referred to are freed) must leave them alone.
    """
    if os.getpid() != owner:
        return
    state[STOP] = 1
    for waker in wakers:
        _wake(waker)
        os.close(waker)
        _WAKERS.discard(waker)
    deadline = time.monotonic() + 1.0
    for pid in pids:
        try:
            while not os.waitpid(pid, os.WNOHANG)[0]:
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.0005)
        except ChildProcessError:
            pass  # already reaped by _check
