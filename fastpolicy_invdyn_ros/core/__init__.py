"""The library: models, planning, the policy's control tick, data, checkpoints, metrics. No ROS import.

Read in this order to follow a joint state to a command: ``policy`` (the tick), ``planning`` and
``plan_process`` (plans made off the tick), ``planner`` (the diffusion model), ``actions`` and
``invdyn`` (plan to action), ``smoothing`` and ``safety`` (the command the robot gets).
"""
