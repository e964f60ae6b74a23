"""The tick's statistics: a ring of the last ticks, late ticks counted, ticks without a state left out of the age."""
import numpy as np
import pytest

from fastpolicy_invdyn_ros.ros.tick_stats import TickStats


def test_percentiles_cover_the_last_ticks_and_ages_skip_ticks_without_a_state() -> None:
    stats = TickStats(period_s=0.01, capacity=4)
    for i in range(6):  # ticks 0 and 1 fall out of the ring
        stats.record(0.01 * i, 0.01 * i + 0.001 * (i + 1), np.nan if i == 5 else 0.002 * i)
    assert stats.count == 6 and stats.late == 0
    assert stats.latency_ms()["p50"] == pytest.approx(np.median([3.0, 4.0, 5.0, 6.0]))
    assert stats.state_age_ms()["p50"] == pytest.approx(6.0)  # ages 4, 6, 8 ms; the last tick had no state


def test_a_tick_starting_more_than_one_period_late_is_counted() -> None:
    stats = TickStats(period_s=0.01, capacity=8)
    for started in (0.0, 0.01, 0.02, 0.045, 0.055):
        stats.record(started, started + 0.001)
    assert stats.late == 1
    assert np.isnan(stats.state_age_ms()["p50"])


def test_start_delays_are_summarized_with_their_maximum() -> None:
    stats = TickStats(period_s=0.002, capacity=100)
    for i in range(100):
        stats.record(0.002 * i, 0.002 * i + 0.0003, start_delay_s=0.003 if i == 50 else 0.0001)
    delays = stats.start_delay_ms()
    assert delays["p50"] == pytest.approx(0.1) and delays["max"] == pytest.approx(3.0)
    assert np.isnan(TickStats(period_s=0.002, capacity=4).start_delay_ms()["max"]), "no tick yet"
