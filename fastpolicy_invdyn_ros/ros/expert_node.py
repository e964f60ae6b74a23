"""The scripted expert as a ROS 2 node: a teleoperator for a simulated arm, as ``record`` runs it.

    python -m fastpolicy_invdyn_ros.ros.expert_node --ros-args -p num_goals:=20 [-p robot:=ur5e] ...

It keeps the newest ``/joint_states`` and, from a timer at ``control_rate_hz``, sends the scripted
expert's command for it (a torque, or for a position-controlled arm a position) on the forward
controller of the robot's interface (``/forward_command_controller/commands`` for the 3-joint arm,
``/forward_position_controller/commands`` for the UR5e). It goes through a seeded
sequence of random reachable goals (``sim.goals.session_goals``), each for a fixed time, and
publishes each on the goal topic when it starts (and every 0.5 s). At shutdown it writes a JSON
report of how each goal went.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import numpy as np
from rclpy.exceptions import ParameterException
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from rclpy.task import Future
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from ..core.bags import DEFAULT_GOAL_TOPIC, DEFAULT_STATE_TOPIC
from ..core.files import write_text_atomic
from ..core.joints import JointIndex
from ..core.settings import build, check, setting, settings
from ..sim.expert import ExpertConfig, ScriptedExpert
from ..sim.goals import session_goals
from ..sim.robots import DEFAULT_ROBOT, make_arm
from ..sim.task import TaskConfig, goal_reached
from .common import run_node
from .parameters import current_values, declare_settings
from .processes import controller_name

NODE_NAME = "scripted_expert"
GOAL_REPUBLISH_PERIOD_S = 0.5
"""The expert sends the current goal again this often (a recorder or policy started late still gets it)."""


@dataclass
class ExpertNodeConfig:
    """The parameters of the expert node (all read-only)."""

    robot: str = setting(DEFAULT_ROBOT, read_only=True)
    """Which simulated robot: a built-in one (arm3: 3 joints, torque; ur5e: 6 joints, position) or an MJCF file."""
    seed: int = setting(0, read_only=True)
    """Seeds the start (for the nearby goals), the goals, the expert's gains and its noise."""
    num_goals: int = setting(20, low=1, read_only=True)
    """Goals to go through, one after another."""
    seconds_per_goal: float = setting(3.0, low=0.01, read_only=True)
    """Seconds (node clock) spent on each goal."""
    control_rate_hz: float = setting(100.0, low=1.0, high=1000.0, read_only=True)
    """Command rate in Hz."""
    goal_topic: str = setting(DEFAULT_GOAL_TOPIC, read_only=True)
    """Where goals are published."""
    command_topic: str = setting("", read_only=True)
    """Where commands are published ('': the forward controller of the robot's interface, /<controller>/commands)."""
    state_topic: str = setting(DEFAULT_STATE_TOPIC, read_only=True)
    """sensor_msgs/JointState input."""
    nearby_fraction: float = setting(0.3, low=0.0, high=1.0, read_only=True)
    """Fraction of goals near the previous one."""
    nearby_offset: float = setting(0.25, low=0.0, read_only=True)
    """Largest per-joint offset (rad) of those goals."""
    noise_scale: float = setting(ExpertConfig.noise_scale, low=0.0, read_only=True)
    """Expert acceleration noise std (rad/s^2; 0: none)."""
    command_subscribers: int = setting(1, low=0, read_only=True)
    """Wait for this many command subscribers before starting."""
    goal_subscribers: int = setting(0, low=0, read_only=True)
    """Wait for this many goal subscribers before starting."""
    report_path: str = setting("", read_only=True)
    """JSON file of the per-goal outcomes, written at shutdown ('': none)."""

    def __post_init__(self) -> None:
        check(self)


def control_dt(robot: str, rate_hz: float) -> float:
    """The expert's control period rounded to whole MuJoCo steps (``ArmSim`` needs that; the noise uses it)."""
    timestep = make_arm(robot).model.opt.timestep
    return max(1, round(1.0 / rate_hz / timestep)) * timestep


class ExpertNode(Node):
    """The scripted expert as a teleoperator: newest joint state in, a command out at a fixed rate."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        declare_settings(self, settings(ExpertNodeConfig))
        config = build(ExpertNodeConfig, current_values(self, settings(ExpertNodeConfig)))
        self.config = config
        self.sim = make_arm(config.robot, control_dt(config.robot, config.control_rate_hz))
        self.task = TaskConfig()
        _, self.goals = session_goals(self.sim, config.seed, config.num_goals, config.nearby_fraction,
                                      config.nearby_offset)
        self.expert = ScriptedExpert(self.sim, ExpertConfig(noise_scale=config.noise_scale),
                                     np.random.default_rng([config.seed, 1]))
        self._joints = JointIndex(self.sim.joint_names)
        self.state: np.ndarray | None = None
        self.goal_index = -1  # -1: not started
        self.goal_started_ns = 0
        self.outcomes: list[dict] = []
        self.ticks = 0
        self.done = Future()

        command_topic = config.command_topic or f"/{controller_name(self.sim.interface)}/commands"
        self._command_pub = self.create_publisher(Float64MultiArray, command_topic, 10)
        self._goal_pub = self.create_publisher(Float64MultiArray, config.goal_topic, 10)
        # Raw: a state costs only its bytes here; the newest is deserialized when a command is due.
        self._state_bytes: bytes | None = None
        self.create_subscription(JointState, config.state_topic, self._on_state_bytes, 10, raw=True)
        self._timer = self.create_timer(1.0 / config.control_rate_hz, self._tick)
        self.create_timer(GOAL_REPUBLISH_PERIOD_S, self._publish_goal)

    def _on_state_bytes(self, data: bytes) -> None:
        self._state_bytes = data

    def _update_state(self) -> None:
        """``self.state`` from the newest joint state message ([q, qd] in the arm's joint order)."""
        data, self._state_bytes = self._state_bytes, None
        if data is None:
            return
        msg = deserialize_message(data, JointState)
        index = self._joints.layout(msg.name).index
        if index is None or len(msg.position) != len(msg.name) or len(msg.velocity) != len(msg.name):
            return
        state = np.concatenate((np.asarray(msg.position)[index], np.asarray(msg.velocity)[index]))
        if np.all(np.isfinite(state)):
            self.state = state

    def _ready(self) -> bool:
        return (self.state is not None
                and self._command_pub.get_subscription_count() >= self.config.command_subscribers
                and self._goal_pub.get_subscription_count() >= self.config.goal_subscribers)

    def _tick(self) -> None:
        if self.done.done():
            return
        now_ns = self.get_clock().now().nanoseconds
        self._update_state()
        if self.goal_index < 0:
            if not self._ready():
                return
            self.get_logger().info(f"starting: {len(self.goals)} goals of {self.config.seconds_per_goal:g} s")
            self._next_goal(now_ns)
        elif now_ns - self.goal_started_ns >= self.config.seconds_per_goal * 1e9:
            self._finish_goal()
            if self.goal_index + 1 == len(self.goals):
                self._timer.cancel()
                self.done.set_result(True)
                return
            self._next_goal(now_ns)
        goal = self.goals[self.goal_index]
        command = np.clip(self.expert(self.state, goal), self.sim.command_low, self.sim.command_high)
        self._command_pub.publish(Float64MultiArray(data=command.tolist()))
        self.ticks += 1

    def _next_goal(self, now_ns: int) -> None:
        self.goal_index += 1
        self.goal_started_ns = now_ns
        self.expert.reset()  # a new episode: new gains, fresh noise
        self._publish_goal()

    def _finish_goal(self) -> None:
        goal = self.goals[self.goal_index]
        error = float(np.max(np.abs(self.state[: len(goal)] - goal)))
        reached = goal_reached(self.state, goal, self.task.position_tolerance, self.task.velocity_tolerance)
        self.outcomes.append({"goal": goal.tolist(), "reached": reached, "final_error": error})
        self.get_logger().info(f"goal {self.goal_index + 1}/{len(self.goals)} "
                               f"{'reached' if reached else 'not reached'}, final error {error:.3f} rad")

    def _publish_goal(self) -> None:
        if 0 <= self.goal_index < len(self.goals) and not self.done.done():
            self._goal_pub.publish(Float64MultiArray(data=self.goals[self.goal_index].tolist()))

    def write_report(self) -> None:
        if self.config.report_path:
            report = {"goals": self.outcomes, "commands": self.ticks, "completed": self.done.done()}
            write_text_atomic(self.config.report_path, json.dumps(report, indent=2))


def main(args: list[str] | None = None) -> int:
    """Run the scripted expert node until its last goal is over (or a stop signal)."""
    return run_node(NODE_NAME, ExpertNode, (ValueError, ParameterException), lambda _: SingleThreadedExecutor(),
                    ExpertNode.write_report, until=lambda node: node.done, args=args)


if __name__ == "__main__":
    sys.exit(main())
