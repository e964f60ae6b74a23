"""The robot description: what it refuses, how it travels with the data and the checkpoints, what it
checks a URDF for, and how the planner normalizes a goal of each kind."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from urdf import urdf_of

from fastpolicy_invdyn_ros.core.data import Episodes, load_episodes, planner_windows, save_episodes
from fastpolicy_invdyn_ros.core.normalization import Normalizer
from fastpolicy_invdyn_ros.core.robot import RobotDescription, RobotMismatch, urdf_differences
from fastpolicy_invdyn_ros.sim import ArmSim

ARM = ArmSim().description()


@pytest.mark.parametrize("change, words", [
    (dict(joint_names=["a", "a"]), "distinct"),
    (dict(command_interface="torque"), "command_interface must be one of"),
    (dict(command_low=[-1.0, -1.0]), "command_low needs 3 finite values"),
    (dict(command_high=[-30.0, 45.0, 20.0]), "low <= high"),
    (dict(velocity_limit=[1.0, float("nan"), 1.0]), "finite"),
    (dict(control_dt=0.0), "control_dt must be positive"),
])
def test_a_description_that_contradicts_itself_is_refused(change: dict, words: str) -> None:
    with pytest.raises(RobotMismatch, match=words):
        RobotDescription(**{**ARM.to_dict(), **change})


def test_sizes_that_differ_from_the_named_entries_are_refused() -> None:
    ARM.check_sizes(6, 3, 3)
    with pytest.raises(RobotMismatch, match="the action has 4 entries, the robot description names 3"):
        ARM.check_sizes(6, 4, 3)
    with pytest.raises(RobotMismatch, match="the goal has 2 entries"):
        ARM.check_sizes(6, 3, 2)


def test_the_command_interface_is_the_datas_else_the_option_else_effort() -> None:
    unknown = replace(ARM, command_interface="")
    assert unknown.with_interface("").command_interface == "effort"
    assert unknown.with_interface("position").command_interface == "position"
    assert ARM.with_interface("effort") == ARM and ARM.with_interface("") == ARM
    with pytest.raises(RobotMismatch, match="the data's commands are effort, not position"):
        ARM.with_interface("position")


def test_differences_name_what_differs() -> None:
    assert ARM.differences(ArmSim().description()) == []
    other = replace(ARM, joint_names=["j1", "j2", "j3"], command_high=[25.0, 45.0, 21.0], control_dt=0.002)
    found = " | ".join(ARM.differences(other))
    assert "joint_names" in found and "command_high" in found and "control_dt 0.01 vs 0.002 s" in found


def test_a_urdf_that_agrees_passes_and_each_contradiction_is_named() -> None:
    assert urdf_differences(ARM, urdf_of(ARM)) == []
    assert urdf_differences(ARM, urdf_of(ARM, effort=2.0, velocity=2.0)) == [], "a robot stronger than described"
    cases = {
        "weaker motors": (urdf_of(ARM, effort=0.5), "joint base_yaw: command_high 25 is beyond the URDF's 12.5"),
        "slower joints": (urdf_of(ARM, velocity=0.5), "velocity_limit 8 is beyond the URDF's 4"),
        "a shorter range": (urdf_of(ARM, upper=0.5), "position_high 2 is beyond the URDF's 1"),
        "a fixed joint": (urdf_of(ARM, fixed="elbow_pitch"), "joint elbow_pitch is a fixed joint of the URDF"),
        "another robot": (urdf_of(replace(ARM, joint_names=["j1", "j2", "j3"])), "joint base_yaw is not in the URDF"),
        "not a URDF": ("<robot", "the URDF does not parse"),
    }
    for case, (urdf, words) in cases.items():
        found = urdf_differences(ARM, urdf)
        assert any(words in line for line in found), (case, found)


def _episodes(robot: RobotDescription | None, state_dim: int = 6, action_dim: int = 3, goal_dim: int = 3,
              joint_names: list[str] | None = None) -> Episodes:
    rng = np.random.default_rng(0)
    n = 40
    return Episodes(rng.normal(size=(n, state_dim)), rng.normal(size=(n, action_dim)), rng.normal(size=(n, goal_dim)),
                    [20, 40], 0.01, ARM.joint_names if joint_names is None else joint_names, robot)


def test_npz_files_carry_the_description_and_older_ones_get_what_their_arrays_tell(tmp_path) -> None:
    save_episodes(tmp_path / "arm.npz", _episodes(ARM))
    assert load_episodes(tmp_path / "arm.npz").robot == ARM
    plain = _episodes(None, state_dim=17, action_dim=6, goal_dim=0, joint_names=[])
    save_episodes(tmp_path / "plain.npz", plain)
    robot = load_episodes(tmp_path / "plain.npz").robot
    assert robot.joint_names == [f"joint_{i}" for i in range(6)] and robot.state_names[-1] == "state_16"
    assert robot.command_interface == "" and robot.goal_names == []
    with pytest.raises(RobotMismatch, match="the action has 6 entries, the robot description names 3"):
        _episodes(None, state_dim=17, action_dim=6, joint_names=["a", "b", "c"])


def test_a_goal_is_normalized_as_an_error_from_its_state_entry_or_by_its_own_statistics() -> None:
    # The goal's first entry targets the second joint's position; its second is an end-effector height.
    robot = replace(ARM, goal_names=["shoulder_pitch/position", "tool/z"])
    rng = np.random.default_rng(1)
    states = rng.normal(size=(400, 6))
    goals = np.stack([states[:, 1] + rng.normal(0.0, 0.1, 400), 5.0 + rng.normal(0.0, 2.0, 400)], axis=1)
    episodes = Episodes(states, np.zeros((400, 3)), goals, [200, 400], 0.01, ARM.joint_names, robot)
    windows = planner_windows(episodes, 1, 4)
    normalizer = Normalizer.fit(episodes).with_plan_statistics(windows, robot.goal_state_indices())
    assert robot.goal_state_indices() == [1, -1]
    goal, current = windows["goal"], windows["history"][:, -1]
    normalized = normalizer.normalize_goal_error(torch.as_tensor(goal), torch.as_tensor(current)).numpy()
    scale = normalizer.goal_error_std.numpy()
    assert np.allclose(scale, [0.1, 2.0], rtol=0.15), "the error's spread, and the height's own"
    np.testing.assert_allclose(normalized[:, 0] * scale[0], goal[:, 0] - current[:, 1], atol=1e-5)
    np.testing.assert_allclose(normalized[:, 1] * scale[1] + normalizer.goal_mean[1].item(), goal[:, 1], atol=1e-4)
    restored = Normalizer.from_state_dict(normalizer.state_dict())
    assert restored.goal_index.dtype == torch.int64 and restored.goal_index.tolist() == [1, -1]


def _still_then_moving() -> tuple[Normalizer, dict[str, np.ndarray]]:
    """Episodes that move, then hold still for most of their length (the demonstrations' shape): the normalizer
    fitted on them and their planner windows."""
    rng = np.random.default_rng(2)
    episodes = []
    for _ in range(20):
        still = np.zeros((160, 6))
        moving = np.cumsum(rng.normal(0.0, 0.05, size=(40, 6)), axis=0)
        episodes.append(np.concatenate([moving, still + moving[-1]]))
    states = np.concatenate(episodes)
    data = Episodes(states, np.zeros((len(states), 3)), states[:, :3], list(range(200, len(states) + 1, 200)), 0.01,
                    ARM.joint_names, ARM)
    return Normalizer.fit(data), planner_windows(data, 1, 8)


@pytest.mark.parametrize("plan_scale", ["std", "range", "symlog"])
def test_every_plan_scale_round_trips_and_survives_a_checkpoint(plan_scale: str) -> None:
    fitted, windows = _still_then_moving()
    normalizer = fitted.with_plan_statistics(windows, ARM.goal_state_indices(), plan_scale)
    restored = Normalizer.from_state_dict(normalizer.state_dict())
    current = torch.as_tensor(windows["history"][:, -1], dtype=torch.float32)
    future = torch.as_tensor(windows["future"], dtype=torch.float32)
    plans = restored.normalize_plan(future, current)
    torch.testing.assert_close(restored.unnormalize_plan(plans, current), future, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(plans, normalizer.normalize_plan(future, current))


def test_the_range_and_symlog_scales_bring_the_moves_of_mostly_still_data_near_the_unit_range() -> None:
    fitted, windows = _still_then_moving()
    current = torch.as_tensor(windows["history"][:, -1], dtype=torch.float32)
    future = torch.as_tensor(windows["future"], dtype=torch.float32)
    scaled = {scale: fitted.with_plan_statistics(windows, ARM.goal_state_indices(), scale)
              for scale in ("std", "range", "symlog")}
    largest = {scale: float(normalizer.normalize_plan(future, current).abs().quantile(0.999))
               for scale, normalizer in scaled.items()}
    assert largest["std"] > 4.0, "holding still shrinks the standard deviation: moves are many of it"
    assert largest["range"] < 1.5 and largest["symlog"] < 0.5 * largest["std"]
    # symlog leaves small changes (holding still, the last of a reach) as the std scale has them.
    std, symlog = scaled["std"], scaled["symlog"]
    small = current[:, None, :] + 0.01 * std.plan_delta_std
    torch.testing.assert_close(symlog.normalize_plan(small, current), std.normalize_plan(small, current),
                               rtol=0.01, atol=1e-6)
    with pytest.raises(ValueError, match="plan_scale"):
        fitted.with_plan_statistics(windows, ARM.goal_state_indices(), "minmax")


def test_what_data_does_not_say_is_completed_by_a_description_of_the_same_robot_only() -> None:
    # Joints, period, and a goal of joint positions: all a recording tells.
    from_a_bag = RobotDescription(ARM.joint_names, 0.01, goal_names=ARM.goal_names)
    assert from_a_bag.completed_by(ARM) == ARM
    with pytest.raises(RobotMismatch, match="the robots differ: joint_names"):
        RobotDescription(["j1", "j2", "j3"], 0.01, goal_names=ARM.goal_names).completed_by(ARM)
    with pytest.raises(RobotMismatch, match="command_high"):
        replace(from_a_bag, command_low=[-1.0] * 3, command_high=[1.0] * 3).completed_by(ARM)
