"""The teams that run the numpy plan on every core: forked helper processes, and threads."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from tdn.backends.numpy.memory import shared_zeros
from tdn.backends.numpy.team import PROCESSES_AVAILABLE, SPIN_SECONDS, ProcessTeam, TeamError, ThreadTeam

needs_processes = pytest.mark.skipif(not PROCESSES_AVAILABLE, reason="process teams need Linux on x86-64")
TEAMS = [pytest.param(ProcessTeam, marks=needs_processes), ThreadTeam]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not _alive(pid)


class Phases:
    """Work in two phases: each member writes its slot of `first`, then after a barrier reads all of them."""

    def __init__(self, size: int):
        self.first = shared_zeros((size,), np.int64)
        self.seen = shared_zeros((size, size), np.int64)
        self.tasks = shared_zeros((size, 10), np.int64)
        self.run_number = shared_zeros((1,), np.int64)  # a helper forked by run 1 sees later values only here

    def work(self, rank: int, team) -> None:
        run_number = self.run_number[0]
        self.first[rank] = 100 * run_number + rank
        team.barrier(rank)
        self.seen[rank] = self.first
        for index in team.share(rank, "tasks", 10):
            self.tasks[rank, index] = run_number


@pytest.mark.parametrize("team_class", TEAMS)
@pytest.mark.parametrize("size", [2, 3])
def test_every_member_works_and_sees_the_others_writes_after_a_barrier(team_class, size):
    phases = Phases(size)
    team = team_class(size, lambda rank: phases.work(rank, team))
    try:
        for run_number in (1, 2, 3):
            phases.run_number[0] = run_number
            phases.first[:] = -1
            team.run()
            expected = 100 * run_number + np.arange(size)
            assert (phases.seen == expected).all()  # every member read every member's write
            owners = (phases.tasks == run_number).sum(axis=0)
            assert (owners == 1).all()  # each task ran exactly once, in some member
    finally:
        team.close()


@needs_processes
def test_a_process_team_shares_tasks_out_in_equal_consecutive_runs():
    team = ProcessTeam(3, lambda rank: None)
    assert [list(team.share(rank, "phase", 7)) for rank in range(3)] == [[0, 1, 2], [3, 4], [5, 6]]
    assert [list(team.share(rank, "phase", 1)) for rank in range(3)] == [[0], [], []]  # a lone task: the caller


@needs_processes
def test_a_failing_helper_raises_its_message_and_the_next_run_starts_new_helpers():
    fail = shared_zeros((1,), np.int64)
    done = shared_zeros((2,), np.int64)

    def work(rank):
        if rank == 1 and fail[0]:
            raise ValueError("helper broke")
        done[rank] += 1

    team = ProcessTeam(2, work)
    team.run()
    first_helper = team.pids[0]
    fail[0] = 1
    with pytest.raises(TeamError, match="numpy worker process 1 failed: ValueError: helper broke"):
        team.run()
    assert _wait_gone(first_helper)
    fail[0] = 0
    done[:] = 0
    team.run()
    assert list(done) == [1, 1] and team.pids[0] != first_helper
    team.close()


@needs_processes
def test_a_helper_killed_between_runs_is_reported_then_replaced():
    done = shared_zeros((2,), np.int64)
    team = ProcessTeam(2, lambda rank: done.__setitem__(rank, done[rank] + 1))
    team.run()
    os.kill(team.pids[0], 9)
    with pytest.raises(TeamError, match="exited during a run"):
        team.run()
    team.run()
    assert done[0] == 3 and done[1] == 2  # the caller ran all three times, the helpers twice
    team.close()


@pytest.mark.parametrize("team_class", TEAMS)
def test_a_failure_in_the_caller_stops_the_team_and_the_next_run_works(team_class):
    fail = shared_zeros((1,), np.int64)
    done = shared_zeros((2,), np.int64)

    def work(rank):
        if rank == 0 and fail[0]:
            raise KeyError("caller broke")
        team.barrier(rank)  # the helper waits here for a caller that never comes
        done[rank] += 1

    team = team_class(2, work)
    fail[0] = 1
    with pytest.raises(KeyError, match="caller broke"):
        team.run()
    fail[0] = 0
    team.run()
    assert done[0] == 1
    team.close()


@needs_processes
def test_helpers_exit_when_the_team_is_closed_or_collected():
    team = ProcessTeam(3, lambda rank: None)
    team.run()
    pids = list(team.pids)
    team.close()
    assert not any(map(_alive, pids))
    team = ProcessTeam(2, lambda rank: None)
    team.run()
    pid = team.pids[0]
    del team
    gc.collect()
    assert _wait_gone(pid)


@needs_processes
def test_a_sleeping_helper_is_woken_by_the_next_run():
    done = shared_zeros((2,), np.int64)
    team = ProcessTeam(2, lambda rank: done.__setitem__(rank, done[rank] + 1))
    team.run()
    time.sleep(20 * SPIN_SECONDS)  # long past the spinning: the helper sleeps on its pipe
    team.run()
    assert list(done) == [2, 2]
    team.close()


@needs_processes
def test_helpers_exit_when_their_parent_dies_without_cleaning_up(tmp_path):
    script = textwrap.dedent("""
        import os, sys
        from tdn.backends.numpy.team import ProcessTeam
        team = ProcessTeam(2, lambda rank: None)
        team.run()
        print(team.pids[0], flush=True)
        os._exit(0)  # no finalizers: as if the parent were killed
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert _wait_gone(int(out.stdout))


def test_a_failing_thread_raises_its_own_error_not_the_broken_barrier():
    def work(rank):
        if rank == 1:
            raise ValueError("thread broke")
        team.barrier(rank)

    team = ThreadTeam(2, work)
    with pytest.raises(ValueError, match="thread broke"):
        team.run()
