"""The simulator's tasks behind one interface, so that ``collect`` and ``evaluate`` take ``--task NAME``.

* ``reach``: from a random rest configuration to a random goal (``task``), the default;
* ``obstacle``: the two-way task, past a keep-out disk on either side (``obstacle``).

Each gives its starts and goals, its scripted expert, its time limit, and what an episode did
besides reaching: whether it collided and which way around it went.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .arm import ArmSim
from .expert import ExpertConfig, ScriptedExpert
from .obstacle import DetourExpert, ObstacleConfig, clearance, sample_two_way_task, side_of, signed_offset
from .task import TaskConfig, sample_nearby_task, sample_task

TASKS = ("reach", "obstacle")


@dataclass
class Task:
    """One of ``TASKS`` on a simulated arm."""

    name: str
    """Which task."""
    sim: ArmSim
    """The arm it runs on."""
    reach: TaskConfig = field(default_factory=TaskConfig)
    """What reaching a goal means (all tasks)."""
    obstacle: ObstacleConfig = field(default_factory=ObstacleConfig)
    """The keep-out disk (``obstacle`` only)."""
    nearby_fraction: float = 0.0
    """``reach``: fraction of goals near the start (``task.sample_nearby_task``)."""
    nearby_offset: float = 0.25
    """``reach``: largest per-joint offset (rad) of those goals."""

    def __post_init__(self) -> None:
        if self.name not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.name!r}")

    @property
    def episode_seconds(self) -> float:
        """The time limit of an episode."""
        return self.obstacle.episode_seconds if self.name == "obstacle" else self.reach.episode_seconds

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A rest start and a goal."""
        if self.name == "obstacle":
            return sample_two_way_task(self.sim, rng, self.obstacle)
        if self.nearby_fraction and rng.random() < self.nearby_fraction:  # no draw without nearby goals
            return sample_nearby_task(self.sim, rng, self.reach.goal_margin, self.nearby_offset)
        return sample_task(self.sim, rng, self.reach.goal_margin)

    def expert(self, config: ExpertConfig, rng: np.random.Generator) -> ScriptedExpert:
        """The task's scripted expert (``reset`` it per episode)."""
        if self.name == "obstacle":
            return DetourExpert(self.sim, self.obstacle, config, rng)
        return ScriptedExpert(self.sim, config, rng)

    def clearance(self, states: np.ndarray) -> np.ndarray:
        """(T,) each state's distance (rad) outside the keep-out region, negative inside (inf when reaching)."""
        if self.name != "obstacle":
            return np.full(len(states), np.inf)
        return clearance(states, self.obstacle)

    def collided(self, states: np.ndarray) -> bool:
        """Whether the states entered a keep-out region (never, when reaching)."""
        return bool(np.any(self.clearance(states) < 0.0))

    def side(self, states: np.ndarray, goal: np.ndarray) -> int:
        """Which way around the states go (+1, -1; 0: none, or no obstacle)."""
        if self.name != "obstacle":
            return 0
        return side_of(signed_offset(states[..., : self.sim.num_joints], goal, self.obstacle), self.obstacle)
