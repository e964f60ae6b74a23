"""The periodic thread the control tick and the simulator's physics run in: moments a period apart, the
missed ones skipped as an rcl timer skips them, a phase shift, stopping, and a failing tick reported."""
from __future__ import annotations

import threading
import time

import pytest

from fastpolicy_invdyn_ros.ros.periodic import PeriodicThread

PERIOD_NS = 20_000_000
"""Long enough that a busy machine's scheduling noise (a few ms) never skips a moment by itself."""


class Recorder:
    """Each tick's moment; ``actions[k]`` runs in tick k."""

    def __init__(self, ticks: int, actions: dict[int, object] | None = None) -> None:
        self.dues: list[int] = []
        self.errors: list[Exception] = []
        self.actions = actions or {}
        self.done = threading.Event()
        self._ticks = ticks

    def tick(self, due_ns: int, now_ns: int) -> None:
        self.dues.append(due_ns)
        action = self.actions.get(len(self.dues) - 1)
        if action is not None:
            action()
        if len(self.dues) >= self._ticks:
            self.done.set()

    def failed(self, error: Exception) -> None:
        self.errors.append(error)
        self.done.set()


def run(recorder: Recorder, loop: PeriodicThread) -> list[int]:
    loop.start()
    assert recorder.done.wait(10.0), "the loop stopped ticking"
    loop.stop()
    return [later - earlier for earlier, later in zip(recorder.dues, recorder.dues[1:])]


def test_ticks_come_a_period_apart_and_a_late_one_skips_the_moments_it_missed() -> None:
    recorder = Recorder(6, {2: lambda: time.sleep(3.5 * PERIOD_NS * 1e-9)})
    steps = run(recorder, PeriodicThread("test", PERIOD_NS, recorder.tick, recorder.failed,
                                         clock_ns=time.monotonic_ns))
    assert steps[:2] == [PERIOD_NS, PERIOD_NS]
    # The tick after the long one was due while it ran: it runs at once, then the moments it started too late
    # for are skipped (it started 2.5 periods late), and the phase is kept.
    assert steps[2:4] == [PERIOD_NS, 3 * PERIOD_NS]
    assert all(step % PERIOD_NS == 0 for step in steps)


def test_a_shift_moves_the_moment_after_the_next_and_every_one_after_it() -> None:
    shift_ns = 5_000_000
    loop: PeriodicThread | None = None
    recorder = Recorder(5, {1: lambda: loop.shift(shift_ns)})
    loop = PeriodicThread("test", PERIOD_NS, recorder.tick, recorder.failed, clock_ns=time.monotonic_ns)
    steps = run(recorder, loop)
    assert steps == [PERIOD_NS, PERIOD_NS, PERIOD_NS + shift_ns, PERIOD_NS]


def test_no_tick_runs_once_stop_returns() -> None:
    recorder = Recorder(3)
    loop = PeriodicThread("test", PERIOD_NS, recorder.tick, recorder.failed)
    run(recorder, loop)
    ticks = len(recorder.dues)
    assert not loop.running
    time.sleep(3 * PERIOD_NS * 1e-9)
    assert len(recorder.dues) == ticks


def test_a_tick_that_stops_the_loop_is_its_last() -> None:
    loop: PeriodicThread | None = None
    recorder = Recorder(100, {1: lambda: loop.stop()})
    loop = PeriodicThread("test", PERIOD_NS, recorder.tick, recorder.failed)
    loop.start()
    time.sleep(5 * PERIOD_NS * 1e-9)
    assert len(recorder.dues) == 2 and not loop.running
    loop.start()  # and it starts again, from one period ahead
    time.sleep(2.5 * PERIOD_NS * 1e-9)
    loop.stop()
    assert len(recorder.dues) >= 3


@pytest.mark.parametrize("failing_tick", [0, 2])
def test_a_failing_tick_ends_the_loop_and_reports_the_error(failing_tick: int) -> None:
    def fail() -> None:
        raise RuntimeError("a bug")

    recorder = Recorder(100, {failing_tick: fail})
    loop = PeriodicThread("test", PERIOD_NS, recorder.tick, recorder.failed)
    loop.start()
    assert recorder.done.wait(10.0)
    time.sleep(2 * PERIOD_NS * 1e-9)
    assert [str(error) for error in recorder.errors] == ["a bug"]
    assert len(recorder.dues) == failing_tick + 1 and not loop.running
    loop.stop()
