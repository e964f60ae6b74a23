"""``collect``: scripted-expert demonstrations on a simulated robot, written as NPZ episodes or a rosbag2.

    ros2 run fastpolicy_invdyn_ros collect --output data/demos.npz --episodes 200
    ros2 run fastpolicy_invdyn_ros collect --robot ur5e --output data/ur5e.npz
    ros2 run fastpolicy_invdyn_ros collect --list_robots
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from ..core.bags import STORAGE_FORMATS, write_bag
from ..core.data import save_episodes
from ..core.settings import setting
from ..sim.collect import CollectConfig, collect_records, collection_task, records_to_episodes
from ..sim.robots import ROBOTS, make_arm
from ..sim.task import TaskConfig, summarize
from . import cli


@dataclass
class CollectOptions(CollectConfig):
    """What to collect, and where to write it."""

    output: str = "data/demos.npz"
    """NPZ file, or rosbag2 directory with --format mcap/sqlite3."""
    format: str = setting("npz", choices=("npz", *STORAGE_FORMATS))
    """What to write: NPZ episodes or a rosbag2."""
    list_robots: bool = False
    """Print the built-in robots, one name per line, and collect nothing."""


def collect(options: CollectOptions) -> None:
    if options.list_robots:
        print("\n".join(ROBOTS))
        return
    sim = make_arm(options.robot, options.control_dt)
    started = time.perf_counter()
    records = collect_records(sim, options, progress=True)
    elapsed = time.perf_counter() - started
    summary = summarize(records, sim.dt)
    task = TaskConfig()
    print(f"expert: success {summary.success_rate:.1%} of {len(records)} episodes "
          f"(|q - goal| <= {task.position_tolerance} rad, |qd| <= {task.velocity_tolerance} rad/s at the end), "
          f"final error median {summary.median_final_error:.4f} rad, max {summary.max_final_error:.4f} rad, "
          f"median time to reach {summary.median_seconds_to_reach:.2f} s; collected in {elapsed:.1f} s")
    if options.task == "obstacle":
        task = collection_task(sim, options)
        sides = [task.side(record.states, record.goals[0]) for record in records]
        print(f"obstacle: {np.mean([task.collided(record.states) for record in records]):.1%} collided; "
              f"went around on side +1 in {np.mean(np.array(sides) > 0):.0%}, -1 in {np.mean(np.array(sides) < 0):.0%}")
    episodes = records_to_episodes(records, sim.description())
    if options.format == "npz":
        save_episodes(options.output, episodes)
    else:
        write_bag(options.output, episodes, format=options.format)
    print(f"wrote {options.output}: {episodes.num_episodes} episodes, {len(episodes.states)} steps, dt={episodes.dt}")


def main(argv: list[str] | None = None) -> int:
    return cli.run(CollectOptions, collect, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
