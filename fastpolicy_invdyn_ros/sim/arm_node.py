"""The ``arm_sim`` node: the MuJoCo arm behind the ros2_control forward_command_controller interface.

    ros2 run fastpolicy_invdyn_ros arm_sim --ros-args --params-file config/arm_sim.yaml

One physics step per period (2 ms, real time by default) in a thread of its own, paced against
the node clock (``sim.pacing``), which also reads the commands (``ros_common.PolledGroup``), as
a robot driver's update loop runs: an rclpy timer, or a command callback holding the interpreter
lock when a step is due, would add the executor's few hundred microseconds of Python to states' ages.
After every step it publishes ``/joint_states`` stamped with the moment the simulated time
stands for, so that states stamped 10 ms apart are always 10 ms of physics apart, even when a
busy machine delays a tick and the simulation catches up several steps at once; a step runs only
once its moment has come, so no state is stamped ahead of the clock. It applies
the last good command received on ``/forward_command_controller/commands`` (zero-order hold, as
the controller does). It can also send a seeded sequence of random reachable goals and report
how each went.
"""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import numpy as np
from rclpy.exceptions import ParameterException
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.task import Future
from rclpy.time import Time
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from ..ros_common import PolledGroup, apply_thread_priority, declare_thread_priority, describe, drain, init, run_node
from .arm import ArmConfig, ArmSim
from .goals import GoalSequence
from .pacing import StepPacer
from .task import TaskConfig

NODE_NAME = "arm_sim"
GOAL_REPUBLISH_PERIOD_S = 0.5
"""The current goal is sent again this often, so a policy that starts late still gets it."""
MAX_CATCH_UP_STEPS = 10
"""Physics steps one late wake-up of the physics thread may run (20 ms at 500 Hz) to catch up with the clock."""
MAX_LAG_S = 0.004
"""Simulated time lagging the wall clock by more than this is given up: the stamps then jump ahead.
Small: a command is applied when it arrives, so a lagging simulation would apply it to states
stamped earlier than the command, and a recording would pair commands with the wrong states."""


class StepLog:
    """Preallocated per-step record (time, state, applied command, goal) written as NPZ at the end."""

    def __init__(self, capacity: int, num_joints: int) -> None:
        self.time = np.zeros(capacity)
        self.state = np.zeros((capacity, 2 * num_joints))
        self.command = np.zeros((capacity, num_joints))
        self.goal = np.full((capacity, num_joints), np.nan)
        self.size = 0

    def record(self, time_s: float, state: np.ndarray, command: np.ndarray, goal: np.ndarray | None) -> None:
        if self.size == len(self.time):
            return  # full: keep the beginning (capacity is set by log_max_s)
        i = self.size
        self.time[i], self.state[i], self.command[i] = time_s, state, command
        if goal is not None:
            self.goal[i] = goal
        self.size += 1

    def save(self, path: str, joint_names: list[str], dt: float) -> None:
        n = self.size
        np.savez_compressed(path, time=self.time[:n], state=self.state[:n], command=self.command[:n],
                            goal=self.goal[:n], joint_names=np.array(joint_names), dt=dt)


class ArmSimNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        task = TaskConfig()
        p = self._declare
        physics_dt = p("physics_dt", 0.002, "Physics step (s): a multiple of the MuJoCo timestep", floats=(1e-4, 0.1))
        speed = p("real_time_factor", 1.0, "Simulated seconds per wall-clock second", floats=(0.01, 100.0))
        self.wait_for_command = p("wait_for_command", True, "Hold the arm still until the first command arrives")
        seed = p("seed", 0, "Seeds the start configuration (when not given) and the goals")
        num_goals = p("num_goals", 0, "Random goals to send one after another (0: none)", ints=(0, 100_000))
        goal_topic = p("goal_topic", "/invdyn_policy/goal", "Where goals are published (std_msgs/Float64MultiArray)")
        timeout_s = p("goal_timeout_s", 8.0, "Simulated seconds before an unreached goal is given up",
                      floats=(0.01, 3600.0))
        task.goal_margin = p("goal_margin", task.goal_margin, "Goals and starts lie this far (rad) inside the limits")
        task.position_tolerance = p("position_tolerance", task.position_tolerance, "Max joint error (rad) at the goal")
        task.velocity_tolerance = p("velocity_tolerance", task.velocity_tolerance, "Max joint speed (rad/s) there")
        self.exit_when_done = p("exit_when_done", False, "Shut down after the last goal (writes the report and log)")
        self.report_path = p("report_path", "", "JSON file of the per-goal outcomes written at shutdown ('': none)")
        self.log_path = p("log_path", "", "NPZ file of every step (time, state, command, goal) at shutdown ('': none)")
        log_max_s = p("log_max_s", 600.0, "Longest simulated time the step log holds (s)", floats=(0.0, 86400.0))
        priority = declare_thread_priority(self, 0, "the simulator's threads, as a robot driver's (ros2_control: 50)")

        self.sim = ArmSim(ArmConfig(control_dt=physics_dt))
        rng = np.random.default_rng(seed)
        start = self.declare_parameter("start_positions", Parameter.Type.DOUBLE_ARRAY, describe(
            "Start joint positions (rad), at rest (default: sampled with seed)", read_only=True)).value
        self.sim.reset(self.sim.sample_configuration(rng, task.goal_margin) if start is None else np.array(start))
        self.goals = GoalSequence(self.sim, num_goals, seed + 1, task, timeout_s)
        num_joints = self.sim.num_joints
        self.command = np.zeros(num_joints)
        self.commanded = False
        self.running = False
        self.log = StepLog(round(log_max_s / physics_dt) if self.log_path else 0, num_joints)
        self.done = Future()

        # Each step only copies numbers into the message's arrays (through numpy views).
        zeros = [0.0] * num_joints
        self._joint_msg = JointState(name=list(self.sim.joint_names), position=zeros, velocity=zeros, effort=zeros)
        self._position, self._velocity, self._effort = (
            np.frombuffer(values, dtype=np.float64)
            for values in (self._joint_msg.position, self._joint_msg.velocity, self._joint_msg.effort))
        self._joint_pub = self.create_publisher(JointState, "joint_states", 10)
        self._goal_pub = self.create_publisher(Float64MultiArray, goal_topic, 10)
        # Read by the physics thread before each step, as a driver's update loop reads its command.
        self._commands = self.create_subscription(Float64MultiArray, "forward_command_controller/commands",
                                                  self._on_command, 10, callback_group=PolledGroup())
        self.pacer = StepPacer(round(physics_dt / speed * 1e9), MAX_CATCH_UP_STEPS, round(MAX_LAG_S * 1e9))
        self.steps = 0  # physics steps run
        self._lock = threading.Lock()  # the goals: the physics thread's and the republishing timer's
        self.create_timer(GOAL_REPUBLISH_PERIOD_S, self._republish_goal)
        self._stop = threading.Event()
        self._physics = threading.Thread(target=self._run, name="physics", daemon=True)
        self._physics.start()
        apply_thread_priority(self, priority)  # the physics thread among the others
        self.get_logger().info(f"arm {self.sim.joint_names} at {self.sim.state()[:num_joints].round(3).tolist()}, "
                               f"{1 / physics_dt:g} Hz physics, {num_goals} goals")

    def _declare(self, name: str, default: object, description: str, **value_range: tuple) -> object:
        return self.declare_parameter(name, default, describe(description, read_only=True, **value_range)).value

    def _on_command(self, msg: Float64MultiArray) -> None:
        if len(msg.data) != len(self.command) or not np.isfinite(msg.data).all():
            self.get_logger().warning(f"ignored a command of {len(msg.data)} values (need {len(self.command)} "
                                      f"finite ones); holding the last good one", throttle_duration_sec=1.0)
            return
        self.command[:] = msg.data
        self.commanded = True

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _run(self) -> None:
        """The physics thread: a step (or a catch-up) at every period's moment; missed moments are skipped,
        as a timer skips them."""
        period_ns = self.pacer.step_ns
        due_ns = self._now_ns()
        try:
            while True:
                now_ns = self._now_ns()
                due_ns += period_ns * max(1, (now_ns - due_ns) // period_ns + 1)
                if self._stop.wait(max(0, due_ns - now_ns) * 1e-9):
                    return
                with self._lock:
                    self._step(self._now_ns(), due_ns + period_ns)
        except Exception as error:  # noqa: BLE001 - stop the node with the reason, not a silent thread
            self.get_logger().fatal(f"physics stopped: {type(error).__name__}: {error}")
            if not self.done.done():
                self.done.set_exception(error)  # the process exits with 1

    def _step(self, now_ns: int, next_tick_ns: int) -> None:
        drain(self._commands)
        if not (self.commanded or not self.wait_for_command):
            self._publish_state(now_ns)
            return
        if not self.running:  # physics starts with this tick, and so does the first goal
            self.running = True
            self.pacer.start(next_tick_ns - self.pacer.step_ns, self.steps)
            self._publish_goal()
        for _ in range(self.pacer.due(now_ns, self.steps)):
            state = self.sim.step(self.command)
            self.steps += 1
            if self.goals.update(state, self.sim.time):
                self._goal_finished()
            self.log.record(self.sim.time, state, self.sim.applied_torque, self.goals.current)
            self._publish_state(self.pacer.stamp_ns(self.steps))
        self.pacer.give_up_lag(now_ns, self.steps, next_tick_ns)

    def _publish_state(self, stamp_ns: int) -> None:
        data = self.sim.data
        self._position[:], self._velocity[:], self._effort[:] = data.qpos, data.qvel, data.ctrl
        self._joint_msg.header.stamp = Time(nanoseconds=stamp_ns).to_msg()
        self._joint_pub.publish(self._joint_msg)

    def _goal_finished(self) -> None:
        outcome = self.goals.outcomes[-1]
        self.get_logger().info(f"goal {len(self.goals.outcomes)}/{len(self.goals.goals)} "
                               f"{'reached' if outcome.reached else 'timed out'} after {outcome.seconds:.2f} s, "
                               f"final error {outcome.final_error:.3f} rad")
        self._publish_goal()
        if self.goals.done and self.exit_when_done and not self.done.done():
            self.done.set_result(True)

    def _republish_goal(self) -> None:
        with self._lock:
            self._publish_goal()

    def _publish_goal(self) -> None:
        goal = self.goals.current
        if goal is not None:
            self._goal_pub.publish(Float64MultiArray(data=goal.tolist()))

    def close(self) -> None:
        """Stop the physics, then write the report and the step log, as configured (at shutdown)."""
        self._stop.set()
        self._physics.join()
        if self.report_path:
            Path(self.report_path).write_text(json.dumps(self.goals.report(), indent=2))
        if self.log_path:
            self.log.save(self.log_path, self.sim.joint_names, self.sim.dt)


def main(args: list[str] | None = None) -> int:
    init(args)
    # A bad parameter raises ValueError or ParameterException: one line, no traceback.
    return run_node(NODE_NAME, ArmSimNode, (ValueError, ParameterException), lambda _: SingleThreadedExecutor(),
                    ArmSimNode.close, until=lambda node: node.done)

if __name__ == "__main__":
    sys.exit(main())
