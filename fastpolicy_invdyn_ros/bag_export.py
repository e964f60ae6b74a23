"""``bag_export``: rosbag2 demonstrations to NPZ episodes, and NPZ episodes to a rosbag2.

    ros2 run fastpolicy_invdyn_ros bag_export --bag rec1 --output data/demos.npz --goal_topic /invdyn_policy/goal
    ros2 run fastpolicy_invdyn_ros bag_export --npz data/demos.npz --output data/demos_bag --format mcap
"""
from __future__ import annotations

from dataclasses import dataclass

from . import cli
from .bags import (
    DEFAULT_ACTION_TOPIC,
    DEFAULT_GOAL_TOPIC,
    DEFAULT_STATE_TOPIC,
    STATE_TIMES,
    STORAGE_FORMATS,
    BagReadConfig,
    read_bag_episodes,
    write_bag,
)
from .data import load_episodes, save_episodes


@dataclass
class ExportOptions:
    """Command-line options of ``bag_export`` (each field becomes ``--<name>``)."""

    bag: list[str] = cli.option([], "rosbag2 directories or .mcap/.db3 files to read into one NPZ")
    npz: str = cli.option("", "NPZ episodes file to write as a rosbag2")
    output: str = cli.option("", "the NPZ file (from --bag) or bag directory (from --npz) to create")
    format: str = cli.option("mcap", "storage of the written bag", choices=tuple(STORAGE_FORMATS))
    state_topic: str = cli.option(DEFAULT_STATE_TOPIC, "sensor_msgs/JointState topic")
    action_topic: str = cli.option(DEFAULT_ACTION_TOPIC, "std_msgs/Float64MultiArray command topic")
    goal_topic: str | None = cli.option(
        None, f"std_msgs/Float64MultiArray goal topic (reading: none if unset; writing: {DEFAULT_GOAL_TOPIC} if unset)"
    )
    joint_names: list[str] = cli.option([], "joints to read, in this order; unset: those of the first state message")
    control_dt: float | None = cli.option(None, "control period (s); unset: median interval between paired commands")
    gap_threshold: float = cli.option(BagReadConfig.gap_threshold, "a gap longer than this (s) ends an episode")
    max_nan_fraction: float = cli.option(BagReadConfig.max_nan_fraction, "refuse a topic with more NaN/inf messages")
    state_time: str = cli.option(BagReadConfig.state_time, "time states by header stamp or receive time", STATE_TIMES)


def read_config(options: ExportOptions) -> BagReadConfig:
    """The bag reading options as a ``BagReadConfig``."""
    return BagReadConfig(
        state_topic=options.state_topic,
        action_topic=options.action_topic,
        goal_topic=options.goal_topic,
        joint_names=options.joint_names,
        control_dt=options.control_dt,
        gap_threshold=options.gap_threshold,
        max_nan_fraction=options.max_nan_fraction,
        state_time=options.state_time,
    )


def main(argv: list[str] | None = None) -> None:
    parser = cli.build_parser(ExportOptions, __doc__)
    options = ExportOptions(**vars(parser.parse_args(argv)))
    if bool(options.bag) == bool(options.npz) or not options.output:
        parser.error("give --output and exactly one of --bag (bag -> NPZ) or --npz (NPZ -> bag)")
    try:
        if options.bag:
            episodes, report = read_bag_episodes(options.bag, read_config(options))
            print(report)
            save_episodes(options.output, episodes)
        else:
            episodes = load_episodes(options.npz)
            goal_topic = options.goal_topic or DEFAULT_GOAL_TOPIC
            write_bag(
                options.output,
                episodes,
                format=options.format,
                state_topic=options.state_topic,
                action_topic=options.action_topic,
                goal_topic=goal_topic,
            )
            if episodes.goal_dim:
                print(f"goals are on {goal_topic}: read them back with --goal_topic {goal_topic}")
    except (ValueError, OSError) as error:  # BagError is a ValueError
        parser.error(str(error))
    steps = len(episodes.states)
    print(f"wrote {options.output}: {episodes.num_episodes} episodes, {steps} steps, dt={episodes.dt:.6g}")


if __name__ == "__main__":
    main()
