"""The two-way task on the MuJoCo arm: the expert goes around either way and decides from the state."""
from __future__ import annotations

import numpy as np
import pytest

from fastpolicy_invdyn_ros.sim import ArmConfig, ArmSim, ExpertConfig, run_episode
from fastpolicy_invdyn_ros.sim.obstacle import DetourExpert, ObstacleConfig, signed_offset
from fastpolicy_invdyn_ros.sim.tasks import Task


@pytest.fixture(scope="module")
def task() -> Task:
    return Task("obstacle", ArmSim(ArmConfig()))


def test_the_expert_goes_around_on_both_sides_with_its_clearance(task: Task) -> None:
    rng = np.random.default_rng(3)
    expert = task.expert(ExpertConfig(), rng)
    steps = round(task.episode_seconds / task.sim.dt)
    sides = []
    for _ in range(12):
        q0, goal = task.sample(rng)
        assert task.collided(np.array([q0 + 0.5 * (goal - q0)])), "the straight way is blocked"
        expert.reset()
        record = run_episode(task.sim, expert, goal, q0, steps, task.reach)
        # The clearance, not just no collision: a policy imitating it is no closer to the disk than it.
        assert record.reached and task.clearance(record.states).min() > 2 / 3 * task.obstacle.clearance
        sides.append(task.side(record.states, goal))
    assert set(sides) == {1, -1}


def test_the_expert_decides_from_the_state_its_drawn_side_only_breaks_the_tie_on_the_line(task: Task) -> None:
    config = ObstacleConfig()
    left, right = (DetourExpert(task.sim, config, ExpertConfig(noise_scale=0.0, frequency_jitter=0.0))
                   for _ in range(2))
    left.side, right.side = 1, -1
    q0, goal = task.sample(np.random.default_rng(4))
    on_line = np.concatenate([q0, np.zeros(3)])
    assert not np.allclose(left(on_line, goal), right(on_line, goal))
    off_line = on_line.copy()
    off_line[1] += 0.1  # beside the line: both go around on that side
    assert abs(signed_offset(off_line[:3], goal, config)) > config.side_deadband
    np.testing.assert_array_equal(left(off_line, goal), right(off_line, goal))


@pytest.mark.parametrize("angle", [np.pi / 4, 3 * np.pi / 4, -np.pi / 3])
def test_the_expert_leaves_the_line_as_fast_on_a_diagonal_way_as_on_one_along_a_joint(task: Task, angle: float) -> None:
    """Saturated joint by joint, a way diagonal in the disk's plane squeezed the sideways pull: the arm left the
    line half as fast as on a way along a joint, and the way was decided late on those starts."""
    def offset_after(direction: np.ndarray, ticks: int = 16) -> float:
        expert = DetourExpert(task.sim, task.obstacle, ExpertConfig(noise_scale=0.0, frequency_jitter=0.0))
        expert.side = 1
        q0, goal = np.zeros(3), np.zeros(3)
        q0[:2], goal[:2] = -1.2 * direction, 1.2 * direction
        record = run_episode(task.sim, expert, goal, q0, ticks)
        return float(signed_offset(record.states[-1, :3], goal, task.obstacle))

    along_a_joint = offset_after(np.array([1.0, 0.0]))
    assert along_a_joint > 0.05
    assert offset_after(np.array([np.cos(angle), np.sin(angle)])) == pytest.approx(along_a_joint, rel=0.05)


def test_clearance_is_the_distance_outside_the_disk_and_reaching_has_none(task: Task) -> None:
    config = task.obstacle
    states = np.zeros((3, 6))
    states[:, list(config.joints)] = [config.center, (config.center[0] + config.radius + 0.1, config.center[1]),
                                      (config.center[0], config.center[1] - config.radius + 0.05)]
    np.testing.assert_allclose(task.clearance(states), [-config.radius, 0.1, -0.05])
    assert task.collided(states) and not task.collided(states[1:2])
    assert np.all(np.isinf(Task("reach", task.sim).clearance(states))) and not Task("reach", task.sim).collided(states)
