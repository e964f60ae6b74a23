"""The ``arm_sim`` node: a simulated MuJoCo arm behind the ros2_control interface of its actuators.

    ros2 run fastpolicy_invdyn_ros arm_sim --ros-args --params-file config/arm_sim.yaml [-p robot:=ur5e]

One physics step per period (2 ms, real time by default) in a thread of its own, paced against
the node clock (``sim.pacing``), which also reads the commands (``ros_common.PolledGroup``), as
a robot driver's update loop runs: an rclpy timer, or a command callback holding the interpreter
lock when a step is due, would add the executor's few hundred microseconds of Python to states' ages.
After every step it publishes ``/joint_states`` stamped with the moment the simulated time
stands for, so that states stamped 10 ms apart are always 10 ms of physics apart, even when a
busy machine delays a tick and the simulation catches up several steps at once; a step runs only
once its moment has come, so no state is stamped ahead of the clock. It applies
the last good command received on its interface's forward controller topic (zero-order hold, as
the controller does): ``/forward_command_controller/commands`` for torques (the 3-joint arm),
``/forward_position_controller/commands`` for positions (the UR5e), ``/forward_velocity_controller/commands``
for velocities. A position-controlled arm also follows a ``trajectory_msgs/JointTrajectory`` on
``/joint_trajectory_controller/joint_trajectory`` as that controller would (``sim.trajectory``); the
newest command of either kind is in force. It can also send a seeded sequence of random reachable
goals and report how each went.
"""
from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass

import numpy as np
from rclpy.exceptions import ParameterException
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.task import Future
from rclpy.time import Time
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from ..core.files import atomic_file, write_text_atomic
from ..core.joints import JointIndex
from ..core.settings import build, check, setting, settings
from ..sim.goals import GoalSequence
from ..sim.pacing import StepPacer
from ..sim.robots import DEFAULT_ROBOT, make_arm
from ..sim.task import TaskConfig
from ..sim.trajectory import TrajectoryFollower, trajectory_problem
from .common import PolledGroup, apply_thread_priority, drain, run_node
from .periodic import PeriodicThread
from .parameters import current_values, declare_settings
from .processes import FORWARD_CONTROLLERS, TRAJECTORY_CONTROLLER

NODE_NAME = "arm_sim"
GOAL_REPUBLISH_PERIOD_S = 0.5
"""The current goal is sent again this often, so a policy that starts late still gets it."""
IGNORED_REPORT_PERIOD_S = 1.0
"""Ignored commands are logged at most this often, counted (the physics thread counts them; it never logs)."""
MAX_CATCH_UP_STEPS = 10
"""Physics steps one late wake-up of the physics thread may run (20 ms at 500 Hz) to catch up with the clock."""
MAX_LAG_S = 0.004
"""Simulated time lagging the wall clock by more than this is given up: the stamps then jump ahead.
Small: a command is applied when it arrives, so a lagging simulation would apply it to states
stamped earlier than the command, and a recording would pair commands with the wrong states."""


@dataclass
class ArmSimConfig:
    """The parameters of ``arm_sim`` (all read-only)."""

    robot: str = setting(DEFAULT_ROBOT, read_only=True)
    """Which simulated robot: a built-in one (arm3: 3 joints, torque; ur5e: 6 joints, position) or an MJCF file."""
    physics_dt: float = setting(0.002, low=1e-4, high=0.1, read_only=True)
    """Physics step in seconds, a multiple of the MuJoCo timestep; /joint_states is published after every step."""
    real_time_factor: float = setting(1.0, low=0.01, high=100.0, read_only=True)
    """Simulated seconds per wall-clock second (1.0: real time)."""
    wait_for_command: bool = setting(True, read_only=True)
    """Hold the arm still (no physics) until the first command arrives, like a robot whose brakes release when
    its controller starts; goal timing starts then too."""
    start_positions: list[float] | None = setting(None, read_only=True)
    """Start joint positions in rad, at rest; unset: sampled with seed inside the joint limits."""
    seed: int = setting(0, read_only=True)
    """Seeds the sampled start configuration and the goal sequence."""
    num_goals: int = setting(0, low=0, high=100_000, read_only=True)
    """Random reachable goals (sampled as the training tasks are) sent one after another; 0 sends none."""
    goal_topic: str = setting("/invdyn_policy/goal", read_only=True)
    """Where the goals go (std_msgs/Float64MultiArray, one position per joint)."""
    goal_timeout_s: float = setting(8.0, low=0.01, high=3600.0, read_only=True)
    """Simulated seconds before an unreached goal is given up and the next one starts."""
    goal_margin: float = setting(TaskConfig.goal_margin, low=0.0, read_only=True)
    """Goals and the sampled start lie at least this far (rad) inside the joint limits."""
    position_tolerance: float = setting(TaskConfig.position_tolerance, low=0.0, read_only=True)
    """A goal is reached when every joint is within this many rad of it (and slower than velocity_tolerance)."""
    velocity_tolerance: float = setting(TaskConfig.velocity_tolerance, low=0.0, read_only=True)
    """Largest joint speed (rad/s) at a reached goal."""
    exit_when_done: bool = setting(False, read_only=True)
    """Shut down after the last goal, writing the report and the log (for scripted runs)."""
    report_path: str = setting("", read_only=True)
    """JSON file of the per-goal outcomes (goal, reached, seconds, final error), written at shutdown; '': none."""
    log_path: str = setting("", read_only=True)
    """NPZ file of every physics step (time, state, applied command, goal), written at shutdown; '': none."""
    log_max_s: float = setting(600.0, low=0.0, high=86400.0, read_only=True)
    """Longest simulated time the step log holds, in seconds (its memory is allocated at start)."""
    thread_priority: int = setting(0, low=0, high=99, read_only=True)
    """SCHED_FIFO priority of the simulator's threads, as a robot's driver runs (0: normal scheduling); without
    permission, a warning and normal scheduling."""

    def __post_init__(self) -> None:
        check(self)


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
        with atomic_file(path) as handle:
            np.savez_compressed(handle, time=self.time[:n], state=self.state[:n], command=self.command[:n],
                                goal=self.goal[:n], joint_names=np.array(joint_names), dt=dt)


class ArmSimNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        declare_settings(self, settings(ArmSimConfig))
        config = build(ArmSimConfig, current_values(self, settings(ArmSimConfig)))
        self.wait_for_command, self.exit_when_done = config.wait_for_command, config.exit_when_done
        self.report_path, self.log_path = config.report_path, config.log_path
        physics_dt, num_goals = config.physics_dt, config.num_goals
        task = TaskConfig(position_tolerance=config.position_tolerance, velocity_tolerance=config.velocity_tolerance,
                          goal_margin=config.goal_margin)

        self.sim = make_arm(config.robot, physics_dt)
        rng = np.random.default_rng(config.seed)
        start = config.start_positions
        self.sim.reset(self.sim.sample_configuration(rng, task.goal_margin) if start is None else np.array(start))
        self.goals = GoalSequence(self.sim, num_goals, config.seed + 1, task, config.goal_timeout_s)
        num_joints = self.sim.num_joints
        # Until a command comes a servo holds where the arm is (a trajectory starts there); a motor applies none.
        self.command = self.sim.state()[:num_joints] if self.sim.interface == "position" else np.zeros(num_joints)
        self.commanded = False
        self.running = False
        self.log = StepLog(round(config.log_max_s / physics_dt) if self.log_path else 0, num_joints)
        self.done = Future()

        # Each step only copies numbers into the message's arrays (through numpy views).
        zeros = [0.0] * num_joints
        self._joint_msg = JointState(name=list(self.sim.joint_names), position=zeros, velocity=zeros, effort=zeros)
        self._position, self._velocity, self._effort = (
            np.frombuffer(values, dtype=np.float64)
            for values in (self._joint_msg.position, self._joint_msg.velocity, self._joint_msg.effort))
        self._joint_pub = self.create_publisher(JointState, "joint_states", 10)
        self._goal_pub = self.create_publisher(Float64MultiArray, config.goal_topic, 10)
        # Read by the physics thread before each step, as a driver's update loop reads its command.
        controller = FORWARD_CONTROLLERS[self.sim.interface]
        self._commands = [self.create_subscription(Float64MultiArray, f"{controller}/commands", self._on_command, 10,
                                                   callback_group=PolledGroup())]
        self.trajectory = TrajectoryFollower()
        if self.sim.interface == "position":
            self._trajectory_joints = JointIndex(self.sim.joint_names)
            self._commands.append(self.create_subscription(
                JointTrajectory, f"{TRAJECTORY_CONTROLLER}/joint_trajectory", self._on_trajectory, 10,
                callback_group=PolledGroup()))
        self.pacer = StepPacer(round(physics_dt / config.real_time_factor * 1e9), MAX_CATCH_UP_STEPS, round(MAX_LAG_S * 1e9))
        self.steps = 0  # physics steps run
        self._lock = threading.Lock()  # the goals and the ignored commands: the physics thread's and the timers'
        self._ignored = 0  # bad commands since the last report of them
        self._first_ignored = ""  # what the first of them was
        self.create_timer(GOAL_REPUBLISH_PERIOD_S, self._republish_goal)
        self.create_timer(IGNORED_REPORT_PERIOD_S, self._report_ignored)
        self._physics = PeriodicThread("physics", self.pacer.step_ns, self._physics_tick, self._physics_failed,
                                       clock_ns=self._now_ns)
        self._physics.start()
        apply_thread_priority(self, config.thread_priority)  # the physics thread among the others
        self.get_logger().info(f"arm {self.sim.joint_names} ({self.sim.interface} commands on "
                               f"{[sub.topic_name for sub in self._commands]}) at "
                               f"{self.sim.state()[:num_joints].round(3).tolist()}, {1 / physics_dt:g} Hz physics, "
                               f"{num_goals} goals")

    def _on_command(self, msg: Float64MultiArray) -> None:
        if len(msg.data) != len(self.command) or not np.isfinite(msg.data).all():
            self._ignore(f"a command of {len(msg.data)} values (need {len(self.command)} finite ones)")
            return
        self.command[:] = msg.data
        self.trajectory.stop()
        self.commanded = True

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        index = self._trajectory_joints.layout(msg.joint_names).index
        times = np.array([point.time_from_start.sec + point.time_from_start.nanosec * 1e-9 for point in msg.points])
        rows = [point.positions for point in msg.points]
        if index is None or any(len(row) != len(msg.joint_names) for row in rows):
            problem = "does not give every joint's position once in every point"
        else:
            positions = np.array(rows, dtype=np.float64).reshape(len(rows), len(msg.joint_names))[:, index]
            problem = trajectory_problem(times, positions, len(self.command))
        if problem:
            self._ignore(f"a trajectory that {problem}")
            return
        self.trajectory.start(self.sim.time, self.command.copy(), times, positions)
        self.commanded = True

    def _ignore(self, what: str) -> None:
        """Count a bad command (on the physics thread: a log call, even a throttled one, costs 0.2-0.5 ms)."""
        self._ignored += 1
        self._first_ignored = self._first_ignored or what

    def _report_ignored(self) -> None:
        with self._lock:
            count, what = self._ignored, self._first_ignored
            self._ignored, self._first_ignored = 0, ""
        if count:
            self.get_logger().warning(f"ignored {count} bad command(s) in {IGNORED_REPORT_PERIOD_S:g} s, the first "
                                      f"{what}; holding the last good command")

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _physics_tick(self, due_ns: int, now_ns: int) -> None:
        """A step (or a catch-up) at every period's moment, as a driver's update loop runs."""
        with self._lock:
            self._step(now_ns, due_ns + self.pacer.step_ns)

    def _physics_failed(self, error: Exception) -> None:
        """Stop the node with the reason, not a silent thread (the process exits with 1)."""
        self.get_logger().fatal(f"physics stopped: {type(error).__name__}: {error}")
        if not self.done.done():
            self.done.set_exception(error)

    def _step(self, now_ns: int, next_tick_ns: int) -> None:
        for subscription in self._commands:
            drain(subscription)
        if not (self.commanded or not self.wait_for_command):
            self._publish_state(now_ns)
            return
        if not self.running:  # physics starts with this tick, and so does the first goal
            self.running = True
            self.pacer.start(next_tick_ns - self.pacer.step_ns, self.steps)
            self._publish_goal()
        for _ in range(self.pacer.due(now_ns, self.steps)):
            if self.trajectory.active:
                self.command[:] = self.trajectory.setpoint(self.sim.time)
            state = self.sim.step(self.command)
            self.steps += 1
            if self.goals.update(state, self.sim.time):
                self._goal_finished()
            self.log.record(self.sim.time, state, self.sim.applied_command, self.goals.current)
            self._publish_state(self.pacer.stamp_ns(self.steps))
        self.pacer.give_up_lag(now_ns, self.steps, next_tick_ns)

    def _publish_state(self, stamp_ns: int) -> None:
        data = self.sim.data
        # effort: the torque each joint's actuator applies (for a servo, with the gravity compensation it adds).
        self._position[:], self._velocity[:], self._effort[:] = data.qpos, data.qvel, data.qfrc_actuator
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
        self._physics.stop()
        if self.report_path:
            write_text_atomic(self.report_path, json.dumps(self.goals.report(), indent=2))
        if self.log_path:
            self.log.save(self.log_path, self.sim.joint_names, self.sim.dt)


def main(args: list[str] | None = None) -> int:
    # A bad parameter raises ValueError or ParameterException: one line, no traceback.
    return run_node(NODE_NAME, ArmSimNode, (ValueError, ParameterException), lambda _: SingleThreadedExecutor(),
                    ArmSimNode.close, until=lambda node: node.done, args=args)

if __name__ == "__main__":
    sys.exit(main())
