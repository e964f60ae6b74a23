"""The simulated MuJoCo arms (``robots``: by name), their scripted expert, the reaching task and demonstration collection.

Imports no ROS module; its ROS nodes (``arm_sim``, the expert) live in ``ros/``.
"""
from .arm import DEFAULT_XML, ArmConfig, ArmSim
from .collect import CollectConfig, collect, collect_records, records_to_episodes
from .expert import ExpertConfig, ScriptedExpert
from .robots import DEFAULT_ROBOT, ROBOTS, arm_config, make_arm
from .task import (
    Controller,
    EpisodeRecord,
    ReachSummary,
    TaskConfig,
    goal_reached,
    run_episode,
    sample_nearby_task,
    sample_task,
    summarize,
)

__all__ = [
    "DEFAULT_ROBOT",
    "DEFAULT_XML",
    "ArmConfig",
    "ArmSim",
    "CollectConfig",
    "Controller",
    "EpisodeRecord",
    "ExpertConfig",
    "ROBOTS",
    "ReachSummary",
    "ScriptedExpert",
    "TaskConfig",
    "arm_config",
    "collect",
    "collect_records",
    "goal_reached",
    "make_arm",
    "records_to_episodes",
    "run_episode",
    "sample_nearby_task",
    "sample_task",
    "summarize",
]
