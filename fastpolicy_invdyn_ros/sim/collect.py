"""Scripted-expert demonstrations on the simulated arm, as NPZ episodes (``tools.collect`` writes them).

Each episode starts at rest in a random configuration, reaches a random goal and holds it until
the fixed duration ends, so the data teaches holding as well as reaching.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..core.data import Episodes
from ..core.robot import RobotDescription
from ..core.settings import check, setting
from .arm import ArmConfig, ArmSim
from .expert import ExpertConfig
from .robots import DEFAULT_ROBOT, make_arm
from .task import EpisodeRecord, TaskConfig, run_episode
from .tasks import TASKS, Task


@dataclass
class CollectConfig:
    """Which demonstrations to collect."""

    robot: str = DEFAULT_ROBOT
    """Which simulated robot: a built-in one (arm3: 3 joints, torque; ur5e: 6 joints, position) or an MJCF file."""
    task: str = setting("reach", choices=TASKS)
    """Which task: reach (random goals) or obstacle (past a keep-out disk, either way around)."""
    episodes: int = setting(200, low=1)
    """Number of episodes."""
    seed: int = 0
    """Seed of the starts, goals, expert gains and noise."""
    episode_seconds: float | None = setting(None, low=0.01)
    """Duration of every episode in seconds (unset: the task's, 4 s reaching, 5 s past the obstacle)."""
    noise_scale: float = setting(ExpertConfig.noise_scale, low=0.0)
    """Expert acceleration noise std in rad/s^2 (0: none)."""
    control_dt: float = setting(ArmConfig.control_dt, low=1e-4)
    """Control period in seconds (a multiple of the MuJoCo timestep)."""
    nearby_fraction: float = setting(0.3, low=0.0, high=1.0)
    """reach: fraction of episodes whose goal is near the rest start."""
    nearby_offset: float = setting(0.25, low=0.0)
    """reach: largest per-joint start-to-goal offset (rad) of those episodes."""

    def __post_init__(self) -> None:
        check(self)


def collect_records(sim: ArmSim, config: CollectConfig, task: TaskConfig | None = None,
                    progress: bool = False) -> list[EpisodeRecord]:
    """Run the task's scripted expert from random rest starts to random goals, one fixed-length episode each."""
    spec = collection_task(sim, config, task)
    seconds = config.episode_seconds or spec.episode_seconds
    num_steps = round(seconds / sim.dt)
    if num_steps < 1:
        raise ValueError(f"an episode of {seconds} s has no control period of {sim.dt} s")
    rng = np.random.default_rng(config.seed)
    expert = spec.expert(ExpertConfig(noise_scale=config.noise_scale), rng)
    records = []
    for _ in tqdm(range(config.episodes), desc="collect", unit="episode", disable=not progress):
        q0, goal = spec.sample(rng)
        expert.reset()
        records.append(run_episode(sim, expert, goal, q0, num_steps, spec.reach))
    return records


def collection_task(sim: ArmSim, config: CollectConfig, task: TaskConfig | None = None) -> Task:
    """The task ``config`` names, with its nearby goals for reaching."""
    return Task(config.task, sim, task or TaskConfig(), nearby_fraction=config.nearby_fraction,
                nearby_offset=config.nearby_offset)


def records_to_episodes(records: list[EpisodeRecord], robot: RobotDescription) -> Episodes:
    """Concatenate rollouts of ``robot`` into the flat ``Episodes`` format."""
    return Episodes(
        states=np.concatenate([record.states for record in records]),
        actions=np.concatenate([record.actions for record in records]),
        goals=np.concatenate([record.goals for record in records]),
        episode_ends=np.cumsum([len(record.states) for record in records]),
        dt=robot.control_dt,
        joint_names=robot.joint_names,
        robot=robot,
    )


def collect(config: CollectConfig | None = None, progress: bool = False) -> Episodes:
    """Expert demonstrations on the robot ``config`` names, as it says."""
    config = config or CollectConfig()
    sim = make_arm(config.robot, config.control_dt)
    return records_to_episodes(collect_records(sim, config, progress=progress), sim.description())
