"""``compare`` on a robot unlike the simulated arm: more state entries than actions, no goal, with and
without joint names; it writes its table, CSV and figure with the actions' names and units."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from fastpolicy_invdyn_ros.core.data import Episodes, save_episodes
from fastpolicy_invdyn_ros.core.robot import RobotDescription
from fastpolicy_invdyn_ros.tools.compare import VARIANTS, CompareConfig, compare


def six_actions_seventeen_states(joint_names: list[str], robot: RobotDescription | None) -> Episodes:
    """Smooth random rollouts of a linear system: 17 state entries driven by 6 commands."""
    rng = np.random.default_rng(0)
    steps, episodes = 60, 6
    drive = rng.normal(0.0, 0.3, size=(6, 17))
    states, actions = [], []
    for _ in range(episodes):
        state = rng.normal(size=17)
        for t in range(steps):
            action = np.sin(0.1 * t + rng.normal(0.0, 0.05, size=6))
            states.append(state)
            actions.append(action)
            state = 0.98 * state + 0.05 * action @ drive
    return Episodes(np.array(states), np.array(actions), np.zeros((steps * episodes, 0)),
                    np.arange(1, episodes + 1) * steps, 0.02, joint_names, robot)


@pytest.mark.parametrize("named", [False, True])
def test_compare_handles_any_state_and_action_sizes_with_or_without_joint_names(tmp_path, capsys, named) -> None:
    joints = [f"hip_{i}" for i in range(6)]
    robot = RobotDescription(joints, 0.02, "position", state_names=[f"s{i}" for i in range(17)]) if named else None
    save_episodes(tmp_path / "data.npz", six_actions_seventeen_states(joints if named else [], robot))
    rows = compare(CompareConfig(data=[str(tmp_path / "data.npz")], output_dir=str(tmp_path / "out"), steps=20,
                                 batch_size=32, val_fraction=0.34, latency_iterations=3, device="cpu"))
    assert [row.variant for row in rows] == ["demonstrations", *VARIANTS]
    assert all(np.isfinite(row.action_mse) for row in rows)
    with open(tmp_path / "out" / "comparison.csv") as handle:
        assert [row["variant"] for row in csv.DictReader(handle)] == ["demonstrations", *VARIANTS]
    assert (tmp_path / "out" / "comparison.png").stat().st_size > 10_000
    assert "| enhanced_prob |" in capsys.readouterr().out


def test_the_actions_are_labelled_with_their_names_and_units() -> None:
    joints = [f"hip_{i}" for i in range(6)]
    assert RobotDescription(joints, 0.02, "position").action_labels[0] == "hip_0/position [rad]"
    assert RobotDescription(joints, 0.02, "effort").action_labels[5] == "hip_5/effort [N m]"
    assert RobotDescription(joints, 0.02).action_labels[0] == "hip_0/command", "no unit when the data does not say"
