"""Scripted-expert demonstrations on the simulated arm, as NPZ episodes (``tools.collect`` writes them).

Each episode starts at rest in a random configuration, reaches a random goal and holds it until
the fixed duration ends, so the data teaches holding as well as reaching.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..core.data import Episodes
from ..core.settings import check, setting
from .arm import ArmConfig, ArmSim
from .expert import ExpertConfig, ScriptedExpert
from .task import EpisodeRecord, TaskConfig, run_episode, sample_nearby_task, sample_task


@dataclass
class CollectConfig:
    """Which demonstrations to collect."""

    episodes: int = setting(200, low=1)
    """Number of episodes."""
    seed: int = 0
    """Seed of the starts, goals, expert gains and noise."""
    episode_seconds: float = setting(TaskConfig.episode_seconds, low=0.01)
    """Duration of every episode in seconds."""
    noise_scale: float = setting(ExpertConfig.noise_scale, low=0.0)
    """Expert acceleration noise std in rad/s^2 (0: none)."""
    control_dt: float = setting(ArmConfig.control_dt, low=1e-4)
    """Control period in seconds (a multiple of the MuJoCo timestep)."""
    nearby_fraction: float = setting(0.3, low=0.0, high=1.0)
    """Fraction of episodes whose goal is near the rest start."""
    nearby_offset: float = setting(0.25, low=0.0)
    """Largest per-joint start-to-goal offset (rad) of those episodes."""

    def __post_init__(self) -> None:
        check(self)


def collect_records(sim: ArmSim, config: CollectConfig, task: TaskConfig | None = None,
                    progress: bool = False) -> list[EpisodeRecord]:
    """Run the scripted expert from random rest starts to random goals, one fixed-length episode each.

    A ``nearby_fraction`` of the goals lie within ``nearby_offset`` of their start (``sample_nearby_task``).
    """
    task = task or TaskConfig()
    num_steps = round(config.episode_seconds / sim.dt)
    if num_steps < 1:
        raise ValueError(f"an episode of {config.episode_seconds} s has no control period of {sim.dt} s")
    rng = np.random.default_rng(config.seed)
    expert = ScriptedExpert(sim, ExpertConfig(noise_scale=config.noise_scale), rng)
    records = []
    for _ in tqdm(range(config.episodes), desc="collect", unit="episode", disable=not progress):
        if rng.random() < config.nearby_fraction:
            q0, goal = sample_nearby_task(sim, rng, task.goal_margin, config.nearby_offset)
        else:
            q0, goal = sample_task(sim, rng, task.goal_margin)
        expert.reset()
        records.append(run_episode(sim, expert, goal, q0, num_steps, task))
    return records


def records_to_episodes(records: list[EpisodeRecord], dt: float, joint_names: list[str]) -> Episodes:
    """Concatenate rollouts into the flat ``Episodes`` format."""
    return Episodes(
        states=np.concatenate([record.states for record in records]),
        actions=np.concatenate([record.actions for record in records]),
        goals=np.concatenate([record.goals for record in records]),
        episode_ends=np.cumsum([len(record.states) for record in records]),
        dt=dt,
        joint_names=joint_names,
    )


def collect(config: CollectConfig | None = None, progress: bool = False) -> Episodes:
    """Expert demonstrations on the default arm, as ``config`` says."""
    config = config or CollectConfig()
    sim = ArmSim(ArmConfig(control_dt=config.control_dt))
    return records_to_episodes(collect_records(sim, config, progress=progress), sim.dt, sim.joint_names)
