"""``bag_export``: rosbag2 demonstrations to NPZ episodes, and NPZ episodes to a rosbag2.

    ros2 run fastpolicy_invdyn_ros bag_export --bag rec1 --output data/demos.npz --goal_topic /invdyn_policy/goal
    ros2 run fastpolicy_invdyn_ros bag_export --npz data/demos.npz --output data/demos_bag --format mcap
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

from ..core.bags import DEFAULT_GOAL_TOPIC, STORAGE_FORMATS, BagReadConfig, read_bag_episodes, write_bag
from ..core.data import load_episodes, save_episodes
from ..core.settings import setting
from . import cli


@dataclass
class ExportOptions:
    """What to convert, and how to read a bag."""

    bag: list[str] = setting([])
    """rosbag2 directories or .mcap/.db3 files to read into one NPZ."""
    npz: str = ""
    """NPZ episodes file to write as a rosbag2."""
    output: str = ""
    """The NPZ file (from --bag) or bag directory (from --npz) to create."""
    format: str = setting("mcap", choices=tuple(STORAGE_FORMATS))
    """Storage of the written bag."""
    reading: BagReadConfig = field(default_factory=BagReadConfig)
    """Topics and joints of the bag, and how to align them (writing uses the topics; the goals go to
    /invdyn_policy/goal when goal_topic is unset)."""

    def __post_init__(self) -> None:
        if bool(self.bag) == bool(self.npz) or not self.output:
            raise ValueError("give --output and exactly one of --bag (bag -> NPZ) or --npz (NPZ -> bag)")


def export(options: ExportOptions) -> None:
    if options.bag:
        episodes, report = read_bag_episodes(options.bag, options.reading)
        print(report)
        save_episodes(options.output, episodes)
    else:
        episodes = load_episodes(options.npz)
        reading = options.reading
        goal_topic = reading.goal_topic or DEFAULT_GOAL_TOPIC
        write_bag(options.output, episodes, format=options.format, state_topic=reading.state_topic,
                  action_topic=reading.action_topic, goal_topic=goal_topic)
        if episodes.goal_dim:
            print(f"goals are on {goal_topic}: read them back with --goal_topic {goal_topic}")
    print(f"wrote {options.output}: {episodes.num_episodes} episodes, {len(episodes.states)} steps, "
          f"dt={episodes.dt:.6g}")


def main(argv: list[str] | None = None) -> int:
    return cli.run(ExportOptions, export, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
