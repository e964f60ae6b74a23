"""The node's input checks, without ROS: joints picked by name, each bad message, staleness, goals."""
from __future__ import annotations

import numpy as np
import pytest

from fastpolicy_invdyn_ros.ros.inputs import GoalInput, JointStateInput

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
