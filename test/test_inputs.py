"""The node's input checks, without ROS: joints picked by name, each bad message, staleness, goals, and the
property that only good states reach the policy (Hypothesis)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastpolicy_invdyn_ros.core.checkpoint import load_invdyn, load_planner
from fastpolicy_invdyn_ros.core.paths import share_path
from fastpolicy_invdyn_ros.core.policy import Policy, PolicyConfig
from fastpolicy_invdyn_ros.core.safety import StateBounds
from fastpolicy_invdyn_ros.ros.inputs import GoalInput, JointStateInput
from fastpolicy_invdyn_ros.sim import ArmSim

JOINTS = ["a", "b", "c"]


def fresh() -> tuple[JointStateInput, np.ndarray]:
    return JointStateInput(JOINTS, timeout_s=0.1), np.zeros(6)


def test_joints_are_picked_by_name_in_the_configured_order() -> None:
    joints, out = fresh()
    joints.update(["c", "x", "a", "b"], [3.0, 9.0, 1.0, 2.0], [30.0, 90.0, 10.0, 20.0], stamp_ns=5, received_s=1.0)
    assert joints.read(1.05, out) == ("", 5)
    assert out.tolist() == [1.0, 2.0, 3.0, 10.0, 20.0, 30.0]


@pytest.mark.parametrize("names, positions, velocities, stamp_ns, reason", [
    (JOINTS, [1.0, np.nan, 3.0], [0.0, 0.0, 0.0], 20, "non-finite position/velocity of joint(s) ['b']"),
    (JOINTS, [1.0, 2.0, 3.0], [0.0, 0.0, np.inf], 20, "non-finite position/velocity of joint(s) ['c']"),
    (["a", "b"], [1.0, 2.0], [0.0, 0.0], 20, "joint_states lacks joint(s) ['c']"),
    (JOINTS, [1.0, 2.0], [0.0, 0.0, 0.0], 20, "mismatched length"),
    (JOINTS, [1.0, 2.0, 3.0], [], 20, "mismatched length"),
    (JOINTS, [1.0, 2.0, 3.0], [0.0, 0.0, 0.0], 10, "joint_states stamp repeated"),
    (JOINTS, [1.0, 2.0, 3.0], [0.0, 0.0, 0.0], 9, "joint_states stamp went backwards"),
])
def test_a_bad_message_is_reported_once_read_and_the_last_good_state_kept(names, positions, velocities, stamp_ns,
                                                                         reason) -> None:
    joints, out = fresh()
    joints.update(JOINTS, [1.0, 2.0, 3.0], [0.0, 0.0, 0.0], stamp_ns=10, received_s=1.0)
    joints.update(names, positions, velocities, stamp_ns=stamp_ns, received_s=1.01)
    joints.update(JOINTS, [4.0, 5.0, 6.0], [0.0, 0.0, 0.0], stamp_ns=30, received_s=1.02)  # good again
    found, _ = joints.read(1.03, out)
    assert reason in found, "latched until a tick has seen it"
    assert joints.read(1.04, out) == ("", 30), "then recovered by the good message"
    assert out[:3].tolist() == [4.0, 5.0, 6.0]


def test_input_is_stale_before_the_first_message_and_after_the_timeout() -> None:
    joints, out = fresh()
    assert joints.read(0.0, out)[0] == "no joint_states received yet"
    joints.update(JOINTS, [1.0, 2.0, 3.0], [0.0, 0.0, 0.0], stamp_ns=10, received_s=1.0)
    assert joints.read(1.05, out)[0] == ""
    assert "no valid joint_states for more than state_timeout_s" in joints.read(1.2, out)[0]


def test_a_bad_goal_is_reported_once_and_the_last_good_one_kept() -> None:
    goals, out = GoalInput(3), np.zeros(3)
    assert goals.read(out) == ("", False), "no goal yet"
    goals.update([1.0, 2.0, 3.0])
    goals.update([1.0, 2.0])
    assert goals.read(out) == ("goal ignored: 2 values, expected 3", True)
    goals.update([np.nan, 2.0, 3.0])
    assert goals.read(out) == ("goal ignored: it holds NaN/inf", True)
    assert goals.read(out) == ("", True)
    assert out.tolist() == [1.0, 2.0, 3.0]


BOUNDS = StateBounds.from_limits([-2.0, -1.0, -3.0], [2.0, 1.0, 3.0], [5.0, 5.0, 5.0], margin=0.0)


def bounded() -> tuple[JointStateInput, np.ndarray]:
    return JointStateInput(JOINTS, timeout_s=10.0, bounds=BOUNDS), np.zeros(6)


def test_a_message_naming_a_joint_twice_is_refused_whatever_its_values() -> None:
    joints, out = bounded()
    joints.update(JOINTS, [0.1, 0.2, 0.3], [0.0, 0.0, 0.0], stamp_ns=10, received_s=1.0)
    assert joints.read(1.0, out) == ("", 10)
    joints.update(["a", "b", "c", "a"], [0.1, 0.2, 0.3, 1.9], [0.0] * 4, stamp_ns=20, received_s=1.01)
    assert joints.read(1.02, out)[0] == "joint_states names joint(s) ['a'] more than once"
    assert out[:3].tolist() == [0.1, 0.2, 0.3], "the last good state, not either of the two"


def test_stamps_are_compared_with_the_newest_accepted_message_not_a_rejected_one() -> None:
    joints, out = bounded()
    joints.update(JOINTS, [0.1, 0.2, 0.3], [0.0] * 3, stamp_ns=10_000, received_s=1.0)
    joints.update(JOINTS, [np.nan, 0.2, 0.3], [0.0] * 3, stamp_ns=0, received_s=1.01)  # rejected
    joints.update(JOINTS, [0.5, 0.2, 0.3], [0.0] * 3, stamp_ns=9_500, received_s=1.02)  # older than one used
    assert "went backwards" in joints.read(1.03, out)[0]
    joints.update(JOINTS, [0.7, 0.2, 0.3], [0.0] * 3, stamp_ns=20_000, received_s=1.04)
    assert joints.read(1.05, out) == ("", 20_000) and out[0] == 0.7


@pytest.mark.parametrize("value", [1e30, 1e300, -3.5])
def test_absurd_but_finite_values_are_input_faults(value: float) -> None:
    joints, out = bounded()
    joints.update(JOINTS, [0.0, 0.0, value], [0.0] * 3, stamp_ns=10, received_s=1.0)
    assert joints.read(1.0, out)[0] == "input fault: joint_states position of joint(s) ['c'] outside the robot's range"
    joints.update(JOINTS, [0.0, 0.0, 0.0], [0.0, 1e30, 0.0], stamp_ns=20, received_s=1.1)
    assert "velocity of joint(s) ['b'] outside the robot's range" in joints.read(1.1, out)[0]


# ---- the property: a state is accepted only if it is complete, unique, finite, in range and newer ----------

NAMES = st.sampled_from(JOINTS + ["x"])
VALUES = st.one_of(st.floats(-3.5, 3.5), st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -1e300, 1e300]))


@st.composite
def joint_states(draw):
    """A joint state message with any mix of faults: missing, extra or repeated names, arrays of other
    lengths, NaN/inf, absurd values, stamps repeated or going backwards."""
    names = draw(st.one_of(st.permutations(JOINTS), st.lists(NAMES, min_size=0, max_size=5)))
    size = len(names)
    positions = draw(st.lists(VALUES, min_size=size, max_size=size) | st.lists(VALUES, max_size=6))
    velocities = draw(st.lists(VALUES, min_size=size, max_size=size) | st.lists(VALUES, max_size=6))
    stamp = draw(st.integers(0, 50))
    return list(names), positions, velocities, stamp


def acceptable(names, positions, velocities, stamp, newest) -> tuple[bool, np.ndarray | None]:
    """The oracle, written from the rule, independent of the implementation."""
    if len(positions) != len(names) or len(velocities) != len(names) or len(set(names)) != len(names):
        return False, None
    if not set(JOINTS) <= set(names) or stamp <= newest:
        return False, None
    state = np.array([positions[names.index(j)] for j in JOINTS] + [velocities[names.index(j)] for j in JOINTS])
    ok = np.all(np.isfinite(state)) and np.all(state >= BOUNDS.low) and np.all(state <= BOUNDS.high)
    return bool(ok), state


@pytest.fixture(scope="module")
def shipped_policy():
    planner = load_planner(share_path("models", "planner_final.pth"))
    invdyn = load_invdyn(share_path("models", "invdyn_enhanced_final.pth"))
    limit = ArmSim().torque_limit
    return Policy(planner, invdyn, PolicyConfig(replan_every=8), -limit, limit, 0.01), limit


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(joint_states(), min_size=1, max_size=12))
def test_only_complete_unique_finite_in_range_and_newer_states_are_accepted(shipped_policy, messages) -> None:
    policy, limit = shipped_policy
    policy.reset()
    joints, out = bounded()
    goal = np.zeros(3)
    newest = -1
    for names, positions, velocities, stamp in messages:
        accept, state = acceptable(names, positions, velocities, stamp, newest)
        joints.update(names, positions, velocities, stamp_ns=stamp, received_s=1.0)
        reason, read_stamp = joints.read(1.0, out)
        if accept:
            newest = stamp
            assert reason == "" and read_stamp == stamp and np.array_equal(out, state)
            command = policy.act(out, goal)
        else:
            assert reason, "every rejection has a reason"
            command = policy.safe_action(reason)
        assert np.all(np.isfinite(command)) and np.all(np.abs(command) <= limit)
