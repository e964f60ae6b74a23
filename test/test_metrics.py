"""Metrics against cases whose answers are known."""
import time

import numpy as np
import pytest

from fastpolicy_invdyn_ros.core.metrics import (action_mse, action_sparc, late_gaps, measure_latency,
                                               percentiles_ms, rms_jerk, sparc)


def test_action_mse_is_one_for_predicting_the_mean():
    rng = np.random.default_rng(0)
    target = rng.normal(2.0, [1.0, 5.0], size=(100_000, 2))
    mean, std = target.mean(axis=0), target.std(axis=0)
    assert action_mse(np.broadcast_to(mean, target.shape), target, std) == pytest.approx(1.0, rel=1e-6)
    assert action_mse(target, target, std) == 0.0


def test_rms_jerk_is_zero_for_quadratics_and_exact_for_cubics():
    t = np.arange(50, dtype=float)[:, None]
    assert rms_jerk(1.0 + 2.0 * t + 0.5 * t**2) == pytest.approx(0.0, abs=1e-9)
    # The third difference of t^3 is 6 everywhere.
    assert rms_jerk(t**3) == pytest.approx(6.0)
    with pytest.raises(ValueError):
        rms_jerk(np.zeros((3, 1)))


def test_sparc_prefers_a_smooth_bell_to_a_chattering_profile():
    t = np.linspace(0, 1, 200)
    bell = np.exp(-((t - 0.5) ** 2) / 0.02)
    # SPARC only looks below its 10 Hz cutoff, so the chatter is at 6 Hz.
    chatter = bell * (1.0 + 0.8 * np.sin(2 * np.pi * 6 * t))
    smooth, rough = sparc(bell, 200.0), sparc(chatter, 200.0)
    assert -1.6 < smooth < -1.3
    assert rough < smooth - 0.3
    assert sparc(np.zeros(50), 100.0) == 0.0


def test_action_sparc_penalizes_noisy_commands():
    t = np.linspace(0, 1, 101)[:, None]
    smooth = 10 * t**3 - 15 * t**4 + 6 * t**5  # minimum-jerk step
    noisy = smooth + 0.01 * np.random.default_rng(0).normal(size=smooth.shape)
    assert action_sparc(noisy, 0.01) < action_sparc(smooth, 0.01)


def test_percentiles_are_in_milliseconds():
    result = percentiles_ms(np.full(100, 0.002))
    assert result["p50"] == pytest.approx(2.0) and result["p99"] == pytest.approx(2.0)


def test_paced_calls_start_a_period_apart_and_time_only_the_call() -> None:
    starts: list[float] = []
    before = time.perf_counter()  # the schedule starts later: call k is due one period after k - 1
    durations = measure_latency(lambda: starts.append(time.perf_counter()), 20, warmup=0, period_s=0.005)
    assert len(durations) == 20 and np.all(durations < 0.005)
    assert np.all(np.array(starts) >= before + 0.005 * np.arange(1, 21)), "never before the schedule"
    assert np.median(np.diff(starts)) == pytest.approx(0.005, abs=0.002)


def test_late_gaps_are_the_intervals_longer_than_two_periods_in_any_order():
    assert late_gaps(np.array([7.0, 0.0, 1.0, 2.0, 4.5, 5.0]), 1.0) == [(4.5, 2.5)]  # 5.0 -> 7.0 is two: not late
    assert late_gaps(np.array([5.0, 0.0, 1.0]), 1.0) == [(5.0, 4.0)]
    assert late_gaps(np.array([0.0]), 1.0) == []
