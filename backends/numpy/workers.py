"""A Network's worker pool: how the numpy plans of one Network use the other cores.

Two modes, chosen per Network (`tdn.load(..., parallel=)`, `--parallel`, `TDN_PARALLEL`):

- "threads" (the default): threads of the calling process, created by the first run that needs
  them and blocked on a queue between runs; `close()` (or losing the Network) ends them.
- "processes" (opt-in, Linux on x86-64): forked helper processes that wait by spinning on shared
  memory (team.py), for hosts where the interpreter lock makes threads slow. Only the plan that
  ran last keeps helpers: running another plan of the same Network (another batch or input size)
  stops them and forks new ones, so a Network never holds more than cores - 1 processes.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tdn.backends.numpy.team import PROCESSES_AVAILABLE, ProcessTeam, ThreadTeam

MODES = ("threads", "processes")


class Workers:
    """One Network's threads or helper processes; not thread-safe (nor are the plans)."""

    def __init__(self, mode: str = "threads"):
        if mode not in MODES:
            raise ValueError(f"parallel mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "processes" and not PROCESSES_AVAILABLE:
            raise ValueError("parallel mode 'processes' needs Linux on x86-64; use 'threads'")
        self.mode = mode
        self._executor: ThreadPoolExecutor | None = None
        self._owner = os.getpid()
        self._helpers: weakref.ref[ProcessTeam] | None = None  # the process team that has helpers now
        self._held: list[ThreadPoolExecutor | None] = [None]  # what the finalizer shuts down
        weakref.finalize(self, _release, self._held)

    def team(self, size: int, work: Callable[[int], None], processes: bool) -> ProcessTeam | ThreadTeam:
        """A team of `size` members running `work`; forked processes only in "processes" mode."""
        if processes and self.mode == "processes":
            return ProcessTeam(size, work, on_start=self._starting)
        return ThreadTeam(size, work, self.executor)

    def executor(self, threads: int) -> ThreadPoolExecutor:
        """The pool's threads, at least `threads` of them (made on first use)."""
        if self._owner != os.getpid():  # a fork: the parent's threads do not exist here
            self._owner, self._executor = os.getpid(), None
        if self._executor is None or self._executor._max_workers < threads:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
            self._executor = ThreadPoolExecutor(threads, thread_name_prefix="tdn-numpy")
            self._held[0] = self._executor
        return self._executor

    def _starting(self, team: ProcessTeam) -> None:
        """A process team is about to fork its helpers: the previous one's stop first."""
        previous = self._helpers() if self._helpers is not None else None
        if previous is not None and previous is not team:
            previous.close()
        self._helpers = weakref.ref(team)

    def close(self) -> None:
        """End the threads and helper processes; a later run starts new ones."""
        previous = self._helpers() if self._helpers is not None else None
        if previous is not None:
            previous.close()
        self._helpers = None
        if self._executor is not None and self._owner == os.getpid():
            self._executor.shutdown(wait=True)
        self._executor = self._held[0] = None


def _release(held: list[ThreadPoolExecutor | None]) -> None:
    """At garbage collection: the threads end once idle (the process teams stop on their own)."""
    if held[0] is not None:
        held[0].shutdown(wait=False)
