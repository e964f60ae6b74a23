"""The simulator's pacing: one step per punctual tick, catch-up after a late one, no state stamped ahead of the
clock, time given up beyond the lag limit."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fastpolicy_invdyn_ros.sim.pacing import StepPacer

STEP = 2_000_000  # 2 ms


def pacer() -> StepPacer:
    return StepPacer(step_ns=STEP, max_catch_up=10, max_lag_ns=4_000_000)


def run(pacer: StepPacer, tick_times_ns: list[int]) -> tuple[list[int], list[int]]:
    """Steps per tick and every stamp, as arm_sim runs them on a timer of period STEP started at 0."""
    done, per_tick, stamps = 0, [], []
    for now in tick_times_ns:
        next_tick = (now // STEP + 1) * STEP  # the timer's next scheduled moment
        if not per_tick:
            pacer.start(next_tick - STEP, done)
        steps = pacer.due(now, done)
        for _ in range(steps):
            done += 1
            stamps.append(pacer.stamp_ns(done))
            assert stamps[-1] <= now, "stamped ahead of the clock"
        pacer.give_up_lag(now, done, next_tick)
        per_tick.append(steps)
    return per_tick, stamps


def test_punctual_ticks_with_jitter_run_one_step_each_stamped_with_the_scheduled_moment() -> None:
    rng = np.random.default_rng(0)
    ticks = [k * STEP + int(rng.uniform(0, 0.95) * STEP) for k in range(1000)]
    per_tick, stamps = run(pacer(), ticks)
    assert set(per_tick) == {1}
    assert np.all(np.asarray(stamps) == np.arange(len(stamps)) * STEP), "each tick's own scheduled moment"


def test_a_late_tick_catches_up_and_the_pace_returns() -> None:
    # The tick due at 20 ms comes at 25 ms; the timer then goes on at 26, 28, ... (missed periods skipped).
    ticks = [k * STEP for k in range(10)] + [25_000_000] + [k * STEP for k in range(13, 30)]
    per_tick, stamps = run(pacer(), ticks)
    assert per_tick[10] == 3, "the steps due at 20, 22 and 24 ms run at once"
    assert set(per_tick[11:]) == {1}
    assert len(stamps) == 30 and np.all(np.diff(stamps) == STEP), "no step lost, none extra"


def test_a_long_stall_gives_the_time_up_and_leaves_a_gap() -> None:
    ticks = [k * STEP for k in range(10)] + [100 * STEP + k * STEP for k in range(10)]
    per_tick, stamps = run(pacer(), ticks)
    gaps = np.diff(stamps)
    assert per_tick[10] == 10, "catch-up is bounded"
    assert np.sum(gaps > STEP) == 1 and np.all(gaps >= STEP)
    assert set(per_tick[11:]) == {1}, "then punctual again"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 30_000_000), min_size=2, max_size=200))
def test_any_tick_times_never_stamp_ahead_and_always_advance(gaps_ns: list[int]) -> None:
    ticks = list(np.cumsum(gaps_ns))
    _, stamps = run(pacer(), ticks)
    assert np.all(np.diff(stamps) >= STEP)
