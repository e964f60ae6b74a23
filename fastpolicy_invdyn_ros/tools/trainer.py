"""``trainer``: an inverse dynamics model or the diffusion planner from demonstrations (NPZ or rosbag2).

    ros2 run fastpolicy_invdyn_ros trainer --data data/demos.npz --model_type enhanced
    ros2 run fastpolicy_invdyn_ros trainer --bag demos_bag --goal_topic /invdyn_policy/goal --model_type planner

Writes ``<output_dir>/invdyn_<model_type>_final.pth`` (``planner_final.pth``) and, every
``--checkpoint_every`` steps, a ``*_last.pth`` that ``--resume`` continues from. Under
``torchrun --nproc_per_node N`` each process trains on its shard of every batch.
"""
from __future__ import annotations

import sys

from ..core.training import TrainConfig, train
from . import cli


def main(argv: list[str] | None = None) -> int:
    return cli.run(TrainConfig, train, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
