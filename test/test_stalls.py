"""The machine-stall watchers: one real process per CPU, and the attribution of an interval to a stall."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from fastpolicy_invdyn_ros.ros.monitor import CommandStats
from fastpolicy_invdyn_ros.tools.ros_bench import Measurement, late_ticks, late_without_stall, machine_stalls
from fastpolicy_invdyn_ros.tools.stalls import STALL_S, CoreWatch, StallWatch, worst_stall


def test_a_watcher_per_cpu_wakes_every_period_and_reports_how_late() -> None:
    with StallWatch(period_s=0.002) as watch:
        start = time.time() + 0.1
        watch.start(start, duration_s=0.3)
        cores = watch.result()
    assert sorted(core.cpu for core in cores) == sorted(os.sched_getaffinity(0))
    for core in cores:
        assert core.due_s.shape == core.lateness_s.shape == (150,)
        np.testing.assert_allclose(np.diff(core.due_s), 0.002, atol=1e-6)  # wall-clock seconds: 0.2 us steps
        assert core.due_s[0] == start
        assert np.all(core.lateness_s > -1e-3), "a wake-up before its time"
        assert np.median(core.lateness_s) < 0.05, "woke on its schedule"


def core(cpu: int, lateness_ms: list[float]) -> CoreWatch:
    """A watch of 1 ms periods from t = 100 s."""
    return CoreWatch(cpu, 100.0 + 1e-3 * np.arange(len(lateness_ms)), np.array(lateness_ms) * 1e-3, True)


def test_the_worst_stall_of_an_interval_is_the_latest_wake_up_of_any_core_within_it() -> None:
    cores = [core(0, [0.1, 0.1, 3.0, 0.1, 0.1, 0.1, 0.1, 0.1]), core(1, [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.7, 0.1])]
    assert worst_stall(cores, 100.0015, 100.0045) == pytest.approx(3e-3)  # due at 2 ms, woke at 5 ms
    assert worst_stall(cores, 100.0040, 100.0050) == pytest.approx(3e-3)  # the stall reaches into the interval
    assert worst_stall(cores, 100.0055, 100.0070) == pytest.approx(0.7e-3)  # the other core's
    assert worst_stall(cores, 100.0070, 100.0075) == pytest.approx(0.1e-3)
    assert worst_stall(cores, 200.0, 201.0) == 0.0  # not watched then


def test_each_late_command_is_told_with_the_machines_worst_stall_while_it_was_awaited() -> None:
    stats = CommandStats(count=10, rate_hz=500.0, latency_ms={}, sent_latency_ms={}, late_ticks=2,
                         late_at=[(0.005, 0.0045), (0.0095, 0.0041)], jerk=0.0)
    cores = [core(0, [0.1, 0.1, 3.0, 0.1, 0.1, 0.1, 0.1, 0.1]), core(1, [0.1] * 8)]
    late = late_ticks(stats, first_sent_s=100.0, cores=cores)
    assert [tick.at_s for tick in late] == [0.005, 0.0095]
    assert [tick.gap_ms for tick in late] == pytest.approx([4.5, 4.1])
    assert late[0].machine_stall_ms == pytest.approx(3.0), "the stall from 2 to 5 ms"
    assert late[1].machine_stall_ms < STALL_S * 1e3, "awaited from 5.4 ms on: every core on time"
    assert [tick.machine_stall_ms for tick in late_ticks(stats, 100.0, None)] == [None, None]
    summary = machine_stalls(cores)
    assert summary.stalls == {0: 1, 1: 0} and summary.max_ms == pytest.approx({0: 3.0, 1: 0.1}) and summary.realtime
    assert late_without_stall(Measurement(stats, {}, late, summary)) == 1
    assert late_without_stall(Measurement(stats, {}, late_ticks(stats, 100.0, None), None)) is None
