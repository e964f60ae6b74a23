"""Sequences of random reachable goals for the simulated arm, and the outcome of each. No ROS here."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .arm import ArmSim
from .task import TaskConfig, goal_reached, nearby_goal


@dataclass
class GoalOutcome:
    """How one goal went."""

    goal: list[float]
    """The goal joint positions (rad)."""
    reached: bool
    """The arm was at the goal and settled (``task.goal_reached``) before the timeout."""
    seconds: float
    """Simulated time from the goal's start until it was reached or timed out."""
    final_error: float
    """Max-abs joint position error (rad) when the goal ended."""


class GoalSequence:
    """``num_goals`` goals sampled like the training tasks; the next starts when one is reached or times out."""

    def __init__(self, sim: ArmSim, num_goals: int, seed: int, task: TaskConfig, timeout_s: float) -> None:
        rng = np.random.default_rng(seed)
        self.goals = [sim.sample_configuration(rng, task.goal_margin) for _ in range(num_goals)]
        self.task, self.timeout_s = task, timeout_s
        self.outcomes: list[GoalOutcome] = []
        self._started_s: float | None = None

    @property
    def done(self) -> bool:
        return len(self.outcomes) == len(self.goals)

    @property
    def current(self) -> np.ndarray | None:
        """The goal in force (None when the sequence is done or empty)."""
        return None if self.done else self.goals[len(self.outcomes)]

    def update(self, state: np.ndarray, now_s: float) -> bool:
        """Advance with the arm's state at simulated time ``now_s``; True when the goal changed."""
        goal = self.current
        if goal is None:
            return False
        if self._started_s is None:
            self._started_s = now_s
        elapsed = now_s - self._started_s
        reached = goal_reached(state, goal, self.task.position_tolerance, self.task.velocity_tolerance)
        if not reached and elapsed < self.timeout_s:
            return False
        error = float(np.max(np.abs(state[: len(goal)] - goal)))
        self.outcomes.append(GoalOutcome(goal.tolist(), reached, elapsed, error))
        self._started_s = now_s
        return True

    def report(self) -> dict:
        """Plain values for a JSON report."""
        return {
            "num_goals": len(self.goals),
            "reached": sum(outcome.reached for outcome in self.outcomes),
            "position_tolerance": self.task.position_tolerance,
            "velocity_tolerance": self.task.velocity_tolerance,
            "goals": [asdict(outcome) for outcome in self.outcomes],
        }


def session_goals(sim: ArmSim, seed: int, num_goals: int, nearby_fraction: float, nearby_offset: float,
                  margin: float = TaskConfig.goal_margin) -> tuple[np.ndarray, list[np.ndarray]]:
    """A rest start and ``num_goals`` goals reached one after another, a deterministic function of the seed.

    Goals are random reachable configurations; a ``nearby_fraction`` of them lie within
    ``nearby_offset`` rad per joint of where the arm rests when they start (the start, or the
    previous goal), as ``task.sample_nearby_task`` makes them.
    """
    rng = np.random.default_rng([seed, 0])
    start = sim.sample_configuration(rng, margin)
    goals, previous = [], start
    for _ in range(num_goals):
        if rng.random() < nearby_fraction:
            goal = nearby_goal(sim, rng, previous, margin, nearby_offset)
        else:
            goal = sim.sample_configuration(rng, margin)
        goals.append(goal)
        previous = goal
    return start, goals
