"""The node's command messages: what a ros2_control controller of the models' command interface takes.

``forward``: a ``std_msgs/Float64MultiArray`` on ``~/commands`` (a ``forward_command_controller``:
effort, or the position and velocity forward controllers). ``trajectory`` (position interface): a
``trajectory_msgs/JointTrajectory`` on ``~/joint_trajectory`` for a ``joint_trajectory_controller``:
this tick's command, then the plan's next positions, one control period apart, each clamped and
rate-limited as the commands are. Either way a ``sensor_msgs/JointState`` on ``~/command_stamped``
repeats the command in the interface's field, stamped with the state it answers (for monitors and
latency measurements). Messages are made once; a command only copies numbers into them.
"""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration
from rclpy.lifecycle import LifecycleNode
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ..core.policy import Policy

COMMAND_OUTPUTS = ("forward", "trajectory")
STAMPED_FIELD = {"position": "position", "velocity": "velocity", "effort": "effort"}
"""The JointState field that carries a command of each interface."""


class CommandOutput:
    """The publishers and preallocated messages of one node's commands."""

    def __init__(self, node: LifecycleNode, joint_names: list[str], interface: str, mode: str, dt: float,
                 horizon: int) -> None:
        if mode not in COMMAND_OUTPUTS:
            raise ValueError(f"command_output must be one of {COMMAND_OUTPUTS}, got {mode!r}")
        if mode == "trajectory" and interface != "position":
            raise ValueError(f"command_output trajectory needs models of the position interface, these command "
                             f"{interface}")
        num_joints = len(joint_names)
        self.mode = mode
        self.last = np.zeros(num_joints)
        """The last command sent."""
        self.sent = False
        """A command has been sent."""
        self._stamped = JointState(name=list(joint_names), **{STAMPED_FIELD[interface]: [0.0] * num_joints})
        self._stamped_view = np.frombuffer(getattr(self._stamped, STAMPED_FIELD[interface]), dtype=np.float64)
        self._stamped_pub = node.create_lifecycle_publisher(JointState, "~/command_stamped", 10)
        if mode == "forward":
            self._forward = Float64MultiArray(data=[0.0] * num_joints)
            self._forward_view = np.frombuffer(self._forward.data, dtype=np.float64)
            self._pub = node.create_lifecycle_publisher(Float64MultiArray, "~/commands", 10)
        else:
            # Stamp zero: the controller starts the trajectory on arrival, replacing the one before.
            self._points = [JointTrajectoryPoint(positions=[0.0] * num_joints,
                                                 time_from_start=_duration((k + 1) * dt)) for k in range(horizon)]
            self._point_views = [np.frombuffer(point.positions, dtype=np.float64) for point in self._points]
            self._positions = np.zeros((horizon, num_joints))
            self._trajectory = JointTrajectory(joint_names=list(joint_names))
            self._pub = node.create_lifecycle_publisher(JointTrajectory, "~/joint_trajectory", 10)

    def publish(self, command: np.ndarray, stamp_ns: int, policy: Policy) -> None:
        """Send ``command`` (and, as a trajectory, the plan after it) answering the state stamped ``stamp_ns``."""
        self.last[:] = command
        self.sent = True
        if self.mode == "forward":
            self._forward_view[:] = command
            self._pub.publish(self._forward)
        else:
            count = policy.planned_positions(self._positions)
            for view, positions in zip(self._point_views[:count], self._positions[:count]):
                view[:] = positions
            self._trajectory.points = self._points[:count]
            self._pub.publish(self._trajectory)
        self._stamped_view[:] = command
        stamp = self._stamped.header.stamp
        stamp.sec, stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        self._stamped_pub.publish(self._stamped)

    def destroy(self, node: LifecycleNode) -> None:
        node.destroy_lifecycle_publisher(self._pub)
        node.destroy_lifecycle_publisher(self._stamped_pub)


def _duration(seconds: float) -> Duration:
    sec, nanosec = divmod(round(seconds * 1e9), 1_000_000_000)
    return Duration(sec=sec, nanosec=nanosec)
