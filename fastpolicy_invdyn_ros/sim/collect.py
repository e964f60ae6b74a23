"""``collect``: scripted-expert demonstrations on the simulated arm, written as NPZ episodes.

Each episode starts at rest in a random configuration, reaches a random goal and holds it until
the fixed duration ends, so the data teaches holding as well as reaching.

    ros2 run fastpolicy_invdyn_ros collect --output data/demos.npz --episodes 200
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from .. import cli
from ..bags import STORAGE_FORMATS, write_bag
from ..data import Episodes, save_episodes
from .arm import ArmConfig, ArmSim
from .expert import ExpertConfig, ScriptedExpert
from .task import EpisodeRecord, TaskConfig, run_episode, sample_nearby_task, sample_task, summarize


@dataclass
class CollectOptions:
    """Command-line options of ``collect`` (each field becomes ``--<name>``)."""

    output: str = cli.option("data/demos.npz", "NPZ file, or rosbag2 directory with --format mcap/sqlite3")
    format: str = cli.option("npz", "what to write: NPZ episodes or a rosbag2", choices=("npz", *STORAGE_FORMATS))
    episodes: int = cli.option(200, "number of episodes")
    seed: int = cli.option(0, "seed of starts, goals, expert gains and noise")
    episode_seconds: float = cli.option(TaskConfig.episode_seconds, "duration of every episode in seconds")
    noise_scale: float = cli.option(ExpertConfig.noise_scale, "expert acceleration noise std in rad/s^2 (0: none)")
    control_dt: float = cli.option(ArmConfig.control_dt, "control period in seconds")
    nearby_fraction: float = cli.option(0.3, "fraction of episodes whose goal is near the rest start")
    nearby_offset: float = cli.option(0.25, "largest per-joint start-to-goal offset (rad) of those episodes")


def collect_records(
    sim: ArmSim,
    num_episodes: int,
    seed: int,
    episode_seconds: float,
    expert_config: ExpertConfig | None = None,
    task: TaskConfig | None = None,
    progress: bool = False,
    nearby_fraction: float = CollectOptions.nearby_fraction,
    nearby_offset: float = CollectOptions.nearby_offset,
) -> list[EpisodeRecord]:
    """Run the scripted expert from random rest starts to random goals, one fixed-length episode each.

    A ``nearby_fraction`` of the goals lie within ``nearby_offset`` of their start (``sample_nearby_task``).
    """
    task = task or TaskConfig()
    num_steps = round(episode_seconds / sim.dt)
    if num_episodes < 1 or num_steps < 1:
        raise ValueError(f"need at least one episode of one step, got {num_episodes} x {episode_seconds} s")
    rng = np.random.default_rng(seed)
    expert = ScriptedExpert(sim, expert_config, rng)
    records = []
    for _ in tqdm(range(num_episodes), desc="collect", unit="episode", disable=not progress):
        if rng.random() < nearby_fraction:
            q0, goal = sample_nearby_task(sim, rng, task.goal_margin, nearby_offset)
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


def collect(
    num_episodes: int = CollectOptions.episodes,
    seed: int = CollectOptions.seed,
    episode_seconds: float = CollectOptions.episode_seconds,
    noise_scale: float = CollectOptions.noise_scale,
    control_dt: float = CollectOptions.control_dt,
    progress: bool = False,
    nearby_fraction: float = CollectOptions.nearby_fraction,
) -> Episodes:
    """``num_episodes`` expert demonstrations of ``episode_seconds`` each on the default arm."""
    sim = ArmSim(ArmConfig(control_dt=control_dt))
    records = collect_records(
        sim, num_episodes, seed, episode_seconds, ExpertConfig(noise_scale=noise_scale), progress=progress,
        nearby_fraction=nearby_fraction,
    )
    return records_to_episodes(records, sim.dt, sim.joint_names)


def main(argv: list[str] | None = None) -> None:
    parser = cli.build_parser(CollectOptions, __doc__)
    options = CollectOptions(**vars(parser.parse_args(argv)))
    try:
        sim = ArmSim(ArmConfig(control_dt=options.control_dt))
        started = time.perf_counter()
        records = collect_records(
            sim,
            options.episodes,
            options.seed,
            options.episode_seconds,
            ExpertConfig(noise_scale=options.noise_scale),
            progress=True,
            nearby_fraction=options.nearby_fraction,
            nearby_offset=options.nearby_offset,
        )
    except ValueError as error:
        parser.error(str(error))
    elapsed = time.perf_counter() - started
    summary = summarize(records, sim.dt)
    task = TaskConfig()
    print(
        f"expert: success {summary.success_rate:.1%} of {len(records)} episodes "
        f"(|q - goal| <= {task.position_tolerance} rad, |qd| <= {task.velocity_tolerance} rad/s at the end), "
        f"final error median {summary.median_final_error:.4f} rad, max {summary.max_final_error:.4f} rad, "
        f"median time to reach {summary.median_seconds_to_reach:.2f} s; collected in {elapsed:.1f} s"
    )
    episodes = records_to_episodes(records, sim.dt, sim.joint_names)
    try:
        if options.format == "npz":
            save_episodes(options.output, episodes)
        else:
            write_bag(options.output, episodes, format=options.format)
    except (FileExistsError, ValueError) as error:
        parser.error(str(error))
    print(f"wrote {options.output}: {episodes.num_episodes} episodes, {len(episodes.states)} steps, dt={episodes.dt}")


if __name__ == "__main__":
    main()
