"""The smoother never exceeds its slew and clamp limits, whatever it is fed."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastpolicy_invdyn_ros.core.smoothing import ActionSmoother, SmootherConfig

J = 3
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    actions=arrays(np.float64, st.tuples(st.integers(1, 60), st.just(J)), elements=finite),
    cutoff_hz=st.floats(0.0, 200.0),
    slew_rate=st.floats(0.1, 1e4),
    limit=st.floats(0.1, 100.0),
    enabled=st.booleans(),
    dt=st.sampled_from([0.002, 0.01, 0.02]),
)
def test_outputs_respect_slew_and_clamp(actions, cutoff_hz, slew_rate, limit, enabled, dt):
    low, high = np.full(J, -limit), np.full(J, limit)
    smoother = ActionSmoother(SmootherConfig(enabled, cutoff_hz, slew_rate), dt, low, high)
    smoother.reset()
    previous = smoother.output.copy()
    for action in actions:
        output = smoother(action).copy()
        assert np.all(output >= low) and np.all(output <= high)
        if enabled:
            assert np.all(np.abs(output - previous) <= slew_rate * dt * (1 + 1e-9) + 1e-12)
        previous = output


def test_low_pass_follows_a_step_with_its_time_constant():
    dt, cutoff = 0.001, 5.0
    smoother = ActionSmoother(SmootherConfig(True, cutoff, 0.0), dt, [-10.0], [10.0])
    smoother.reset()
    steps = round(1.0 / (2 * math.pi * cutoff) / dt)  # one time constant
    for _ in range(steps):
        output = smoother(np.array([1.0]))
    assert output[0] == pytest.approx(1 - math.exp(-1), abs=0.01)


def test_disabled_passes_through_but_still_clamps():
    smoother = ActionSmoother(SmootherConfig(smoothing_enabled=False), 0.01, [-1.0, -2.0], [1.0, 2.0])
    assert smoother(np.array([0.5, -5.0])).tolist() == [0.5, -2.0]


def test_live_reconfiguration_keeps_the_state():
    smoother = ActionSmoother(SmootherConfig(True, 0.0, 100.0), 0.01, [-10.0], [10.0])
    smoother.reset()
    assert smoother(np.array([5.0]))[0] == pytest.approx(1.0)
    smoother.configure(SmootherConfig(True, 0.0, 200.0))
    assert smoother(np.array([5.0]))[0] == pytest.approx(3.0)


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError):
        SmootherConfig(smoothing_cutoff_hz=-1.0)
    with pytest.raises(ValueError):
        SmootherConfig(slew_rate=math.nan)
    with pytest.raises(ValueError):
        ActionSmoother(SmootherConfig(), 0.01, [1.0], [-1.0])


def test_a_rate_limit_per_component_holds_with_smoothing_off_too() -> None:
    smoother = ActionSmoother(SmootherConfig(smoothing_enabled=False), 0.01, [-5.0, -5.0], [5.0, 5.0],
                              rate_limit=np.array([1.0, 2.0]))
    smoother.reset(np.zeros(2))
    np.testing.assert_allclose(smoother(np.array([10.0, -10.0])), [0.01, -0.02])
    with pytest.raises(ValueError, match="rate limits must be positive"):
        ActionSmoother(SmootherConfig(), 0.01, [-1.0], [1.0], rate_limit=np.array([0.0]))
