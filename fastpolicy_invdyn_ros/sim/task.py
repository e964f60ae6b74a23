"""The reaching task: what success means, and one episode run by any controller.

The expert's demonstrations and the learned policy's evaluation both go through
``run_episode`` and ``goal_reached``, so their numbers measure the same thing.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .arm import ArmSim

Controller = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Maps (state [q, qd], goal q*) to a command of the arm's interface (a torque, a position or a velocity per joint)."""


@dataclass
class TaskConfig:
    """Reach a random goal configuration from a random rest configuration and hold it."""

    position_tolerance: float = 0.05
    """Largest per-joint position error (rad, max-abs) that counts as at the goal."""
    velocity_tolerance: float = 0.1
    """Largest per-joint speed (rad/s, max-abs) that counts as settled."""
    episode_seconds: float = 4.0
    """Time limit of one episode: the expert settles within ~2.7 s from any start, then holds."""
    goal_margin: float = 0.2
    """Starts and goals are sampled at least this far (rad) inside the joint limits."""


@dataclass
class EpisodeRecord:
    """One rollout: T control steps and the state they led to."""

    states: np.ndarray
    """(T, 2J) state at each step, before its action."""
    actions: np.ndarray
    """(T, J) command applied at each step, after clamping."""
    goals: np.ndarray
    """(T, J) goal in force at each step (constant within an episode)."""
    final_state: np.ndarray
    """(2J,) state after the last action."""
    reached: bool
    """Whether ``final_state`` is at the goal and settled (``goal_reached``)."""
    steps_to_reach: int | None
    """Steps until the arm entered the tolerance and stayed in it to the end; None if not reached."""
    final_error: float
    """Max-abs joint position error (rad) of ``final_state``."""


@dataclass
class ReachSummary:
    """Success statistics over a set of episodes."""

    success_rate: float
    """Fraction of episodes that ended at the goal, settled."""
    median_final_error: float
    """Median over episodes of the final max-abs position error (rad)."""
    max_final_error: float
    """Worst final max-abs position error (rad)."""
    median_seconds_to_reach: float
    """Median settling time (s) of the successful episodes; NaN if none succeeded."""


def goal_reached(state: np.ndarray, goal: np.ndarray, position_tolerance: float, velocity_tolerance: float) -> bool:
    """Every joint within ``position_tolerance`` of the goal and slower than ``velocity_tolerance``."""
    num_joints = len(goal)
    position_error = np.max(np.abs(state[:num_joints] - goal))
    speed = np.max(np.abs(state[num_joints:]))
    return bool(position_error <= position_tolerance and speed <= velocity_tolerance)


def sample_task(sim: ArmSim, rng: np.random.Generator, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """A random start configuration (the arm rests there) and a random goal configuration."""
    return sim.sample_configuration(rng, margin), sim.sample_configuration(rng, margin)


def sample_nearby_task(sim: ArmSim, rng: np.random.Generator, margin: float,
                       max_offset: float) -> tuple[np.ndarray, np.ndarray]:
    """A random rest configuration and a goal at most ``max_offset`` rad away per joint.

    Reaches from far away pass near the goal already moving toward it; a learned policy that
    stopped a little short must also have seen how to start from rest with a small error.
    """
    q0 = sim.sample_configuration(rng, margin)
    return q0, nearby_goal(sim, rng, q0, margin, max_offset)


def nearby_goal(sim: ArmSim, rng: np.random.Generator, rest: np.ndarray, margin: float,
                max_offset: float) -> np.ndarray:
    """A goal at most ``max_offset`` rad per joint from ``rest``, at least ``margin`` inside the limits."""
    low, high = sim.position_limits.T
    return np.clip(rest + rng.uniform(-max_offset, max_offset, size=rest.shape), low + margin, high - margin)


def run_episode(
    sim: ArmSim,
    controller: Controller,
    goal: np.ndarray,
    q0: np.ndarray,
    max_steps: int,
    task: TaskConfig | None = None,
) -> EpisodeRecord:
    """Reset the arm at rest at ``q0`` and run ``controller`` toward ``goal`` for ``max_steps`` steps.

    ``controller`` is called once per step with copies of the state and goal; a command of the
    wrong size or with NaN raises ValueError from ``ArmSim.step``.
    """
    task = task or TaskConfig()
    goal = np.asarray(goal, dtype=np.float64)
    states = np.empty((max_steps, sim.state_dim))
    actions = np.empty((max_steps, sim.action_dim))
    state = sim.reset(q0)
    entered_at: int | None = None
    for t in range(max_steps):
        states[t] = state
        state = sim.step(controller(state, goal.copy()))
        actions[t] = sim.applied_command
        if goal_reached(state, goal, task.position_tolerance, task.velocity_tolerance):
            entered_at = t + 1 if entered_at is None else entered_at
        else:
            entered_at = None
    return EpisodeRecord(
        states=states,
        actions=actions,
        goals=np.tile(goal, (max_steps, 1)),
        final_state=state,
        reached=entered_at is not None,
        steps_to_reach=entered_at,
        final_error=float(np.max(np.abs(state[: len(goal)] - goal))),
    )


def summarize(records: list[EpisodeRecord], dt: float) -> ReachSummary:
    """Success rate, final errors and settling time of ``records`` (control period ``dt``)."""
    errors = np.array([record.final_error for record in records])
    steps = [record.steps_to_reach for record in records if record.reached]
    return ReachSummary(
        success_rate=float(np.mean([record.reached for record in records])),
        median_final_error=float(np.median(errors)),
        max_final_error=float(np.max(errors)),
        median_seconds_to_reach=float(np.median(steps)) * dt if steps else float("nan"),
    )
