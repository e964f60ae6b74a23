"""``record``: scripted-expert demonstrations recorded over ROS 2 into a rosbag2, the way a robot's are.

    ros2 run fastpolicy_invdyn_ros record --output data/demos_bag --goals 20 --seconds_per_goal 3

arm_sim, the scripted expert and a bag recorder in a private ROS domain (``ros.recording``). At the
end it prints what it recorded and how the trainer reads the bag. The recording takes real time:
20 goals of 3 s take a minute, plus the start-up. Ctrl-C ends it early and keeps what was recorded.
"""
from __future__ import annotations

import sys

import numpy as np

from ..core.bags import BagError, BagReadConfig, read_bag_episodes
from ..core.signals import StopRequest
from ..sim.task import TaskConfig
from ..ros.recording import RecordConfig, RecordResult, record
from . import cli


def describe_recording(result: RecordResult, config: RecordConfig) -> str:
    """What was recorded: messages and rates per topic, how the expert did, the size of the bag."""
    size = sum(file.stat().st_size for file in result.path.iterdir())
    ended = "interrupted after" if result.interrupted else "in"
    lines = [f"recorded {result.path} ({config.format}, {size / 1e6:.1f} MB) {ended} {result.seconds:.0f} s:"]
    for topic, count in result.counts.items():
        span = (count.last_ns - count.first_ns) * 1e-9
        lines.append(f"  {topic}: {count.messages} messages over {span:.1f} s ({count.rate_hz():.1f} Hz)")
    outcomes = result.expert_report.get("goals", [])
    if outcomes:
        errors = [outcome["final_error"] for outcome in outcomes]
        reached = sum(outcome["reached"] for outcome in outcomes)
        lines.append(f"  expert: {result.expert_report.get('commands', 0)} commands; at the end of their "
                     f"{config.seconds_per_goal:g} s {reached}/{len(outcomes)} goals reached (within "
                     f"{TaskConfig.position_tolerance} rad, slower than {TaskConfig.velocity_tolerance} rad/s), "
                     f"final error median {np.median(errors):.4f} rad, max {np.max(errors):.4f} rad")
    return "\n".join(lines)


def record_bag(config: RecordConfig) -> int:
    stop = StopRequest().install()
    try:
        result = record(config, stop)
    except RuntimeError as error:
        print(f"record: error: {error}", file=sys.stderr)
        return 1
    finally:
        stop.ignore_from_now_on()  # the recording is over: a late Ctrl-C must not cut the report short
    print(describe_recording(result, config))
    try:
        _, report = read_bag_episodes([result.path], BagReadConfig(goal_topic=config.goal_topic))
    except BagError as error:
        print(f"record: warning: the trainer cannot use this bag: {error}", file=sys.stderr)
        return 1
    print("as the trainer reads it:")
    print(report)
    print(f"train from it: trainer --bag {result.path} --goal_topic {config.goal_topic} --model_type enhanced")
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(RecordConfig, record_bag, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
