"""The simulated arm, its scripted expert and the ``collect`` command, on real MuJoCo."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastpolicy_invdyn_ros.core.data import load_episodes
from fastpolicy_invdyn_ros.sim import (
    ArmConfig,
    ArmSim,
    CollectConfig,
    ExpertConfig,
    ScriptedExpert,
    TaskConfig,
    collect,
    goal_reached,
    run_episode,
    sample_task,
    summarize,
)
from fastpolicy_invdyn_ros.tools.collect import main as collect_main


@pytest.fixture(scope="module")
def sim() -> ArmSim:
    return ArmSim()


def test_arm_layout(sim: ArmSim) -> None:
    assert sim.joint_names == ["base_yaw", "shoulder_pitch", "elbow_pitch"]
    assert (sim.num_joints, sim.state_dim, sim.action_dim) == (3, 6, 3)
    assert sim.model.opt.timestep == pytest.approx(0.002)
    assert sim.substeps == 5
    assert sim.position_limits.shape == (3, 2) and sim.torque_limit.shape == (3,)
    state = sim.reset()
    assert state.dtype == np.float64 and state.shape == (6,)


def test_gravity_pulls_the_unpowered_arm_down(sim: ArmSim) -> None:
    assert sim.model.opt.gravity[2] == pytest.approx(-9.81)
    sim.reset(q0=np.array([0.0, 0.3, 0.0]))
    for _ in range(30):
        state = sim.step(np.zeros(3))
    # Tilted forward, the shoulder falls further forward; the yaw axis feels no gravity.
    assert state[1] > 0.4
    assert abs(state[0]) < 1e-9


@pytest.mark.parametrize(
    "q",
    [
        [0.0, 1.57, 0.0],  # fully stretched horizontally: the worst case for the shoulder
        [1.0, -1.6, 0.1],
        [-1.5, 1.2, 1.2],
        [0.5, 0.8, -2.3],
        [0.0, 0.0, 1.57],  # forearm horizontal: the worst case for the elbow
    ],
)
def test_torque_limits_hold_the_arm_still(sim: ArmSim, q: list[float]) -> None:
    q = np.array(q)
    gravity = sim.inverse_dynamics(q, np.zeros(3), np.zeros(3))
    assert np.all(np.abs(gravity) < 0.5 * sim.torque_limit), gravity
    sim.reset(q0=q)
    for _ in range(100):
        state = sim.step(gravity)
    np.testing.assert_allclose(state[:3], q, atol=1e-6)


def test_worst_case_gravity_torque_leaves_headroom(sim: ArmSim) -> None:
    rng = np.random.default_rng(0)
    gravity = np.array([sim.inverse_dynamics(sim.sample_configuration(rng, 0.0), np.zeros(3), np.zeros(3)) for _ in range(500)])
    assert np.all(np.abs(gravity).max(axis=0) < 0.5 * sim.torque_limit)


def test_step_clamps_torque_to_the_limits(sim: ArmSim) -> None:
    sim.reset()
    sim.step(np.array([1e3, -1e3, 1.0]))
    np.testing.assert_array_equal(sim.applied_command, [sim.torque_limit[0], -sim.torque_limit[1], 1.0])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=3, max_size=3))
def test_applied_torque_never_exceeds_the_limits(torque: list[float]) -> None:
    sim = ArmSim()
    sim.step(np.array(torque))
    assert np.all(np.abs(sim.applied_command) <= sim.torque_limit)


@pytest.mark.parametrize("torque", [np.zeros(2), np.zeros(4), np.zeros((1, 3)), [np.nan, 0.0, 0.0], [np.inf, 0.0, 0.0]])
def test_step_rejects_bad_torque_and_leaves_the_sim_untouched(sim: ArmSim, torque: np.ndarray) -> None:
    before = sim.reset(q0=np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError):
        sim.step(torque)
    np.testing.assert_array_equal(sim.state(), before)
    assert np.all(np.isfinite(sim.step(np.zeros(3))))


def test_reset_validates_its_input(sim: ArmSim) -> None:
    with pytest.raises(ValueError):
        sim.reset(q0=np.array([0.0, 3.0, 0.0]))  # beyond the shoulder limit
    with pytest.raises(ValueError):
        sim.reset(q0=np.zeros(2))
    state = sim.reset(q0=np.array([0.1, 0.2, 0.3]), qd0=np.array([0.0, 0.5, 0.0]))
    np.testing.assert_array_equal(state, [0.1, 0.2, 0.3, 0.0, 0.5, 0.0])


def test_control_dt_must_be_a_multiple_of_the_timestep() -> None:
    with pytest.raises(ValueError, match="multiple"):
        ArmSim(ArmConfig(control_dt=0.003))


def test_sampled_configurations_respect_the_margin(sim: ArmSim) -> None:
    q = np.array([sim.sample_configuration(np.random.default_rng(1), 0.2) for _ in range(200)])
    low, high = sim.position_limits.T
    assert np.all(q >= low + 0.2) and np.all(q <= high - 0.2)


def test_goal_reached_needs_position_and_velocity_in_tolerance() -> None:
    goal = np.array([0.0, 0.5, -0.5])
    assert goal_reached(np.array([0.04, 0.5, -0.5, 0.0, 0.05, 0.0]), goal, 0.05, 0.1)
    assert not goal_reached(np.array([0.06, 0.5, -0.5, 0.0, 0.0, 0.0]), goal, 0.05, 0.1)
    assert not goal_reached(np.array([0.0, 0.5, -0.5, 0.0, 0.0, -0.2]), goal, 0.05, 0.1)


def test_expert_reaches_random_goals_with_noise(sim: ArmSim) -> None:
    rng = np.random.default_rng(123)
    config = ExpertConfig()
    assert config.noise_scale > 0
    expert = ScriptedExpert(sim, config, rng)
    task = TaskConfig()
    records = []
    for _ in range(20):
        q0, goal = sample_task(sim, rng, task.goal_margin)
        expert.reset()
        records.append(run_episode(sim, expert, goal, q0, round(task.episode_seconds / sim.dt), task))
    summary = summarize(records, sim.dt)
    assert summary.success_rate >= 0.95, summary
    assert summary.median_final_error < task.position_tolerance


def test_noise_free_expert_is_a_function_of_state_and_goal(sim: ArmSim) -> None:
    expert = ScriptedExpert(sim, ExpertConfig(noise_scale=0.0, frequency_jitter=0.0))
    state, goal = np.array([0.1, 0.2, 0.3, 0.5, -0.5, 0.0]), np.array([1.0, -0.5, 0.8])
    first = expert(state, goal)
    for _ in range(5):
        expert(np.zeros(6), np.zeros(3))
    expert.reset()
    np.testing.assert_array_equal(expert(state, goal), first)


def test_recorded_actions_lead_to_the_next_states(sim: ArmSim) -> None:
    rng = np.random.default_rng(5)
    q0, goal = sample_task(sim, rng, 0.2)
    record = run_episode(sim, ScriptedExpert(sim, rng=rng), goal, q0, 50)
    assert record.states.shape == (50, 6) and record.actions.shape == (50, 3)
    for t in (0, 10, 48):
        sim.reset(record.states[t, :3], record.states[t, 3:])
        np.testing.assert_allclose(sim.step(record.actions[t]), record.states[t + 1], atol=1e-12)


def test_collect_is_reproducible_from_its_seed() -> None:
    first = collect(CollectConfig(episodes=2, seed=7, episode_seconds=0.2))
    second = collect(CollectConfig(episodes=2, seed=7, episode_seconds=0.2))
    np.testing.assert_array_equal(first.states, second.states)
    np.testing.assert_array_equal(first.actions, second.actions)


def test_collect_command_writes_episodes(tmp_path, capsys) -> None:
    output = tmp_path / "demos.npz"
    collect_main(["--output", str(output), "--episodes", "3", "--episode_seconds", "0.5", "--seed", "1"])
    assert "success" in capsys.readouterr().out

    episodes = load_episodes(output)
    assert episodes.states.shape == (150, 6)
    assert episodes.actions.shape == (150, 3)
    assert episodes.goals.shape == (150, 3)
    np.testing.assert_array_equal(episodes.episode_ends, [50, 100, 150])
    assert episodes.dt == pytest.approx(0.01)
    assert episodes.joint_names == ["base_yaw", "shoulder_pitch", "elbow_pitch"]
    goals = [episodes.episode(i).goals for i in range(3)]
    for goal in goals:
        assert np.all(goal == goal[0])
    assert not np.allclose(goals[0][0], goals[1][0])
    # Every episode starts at rest.
    np.testing.assert_array_equal(episodes.states[episodes.episode_starts, 3:], 0.0)
