"""The ``invdyn_policy`` node: the learned policy as a managed (lifecycle) ROS 2 controller.

    ros2 run fastpolicy_invdyn_ros invdyn_policy --ros-args --params-file config/invdyn_policy.yaml

Thin wiring over ``core.policy.Policy``. Its parameters are the fields of ``PolicyNodeConfig``
(start-up, read-only) and of ``core.policy.PolicyConfig`` (live), declared from the dataclasses
(``ros.parameters``). The lifecycle:

* configure: load both models, check them against the parameters, warm them up, start the
  planner process (it takes seconds, so activation stays quick); a failure leaves the node
  unconfigured with one error line;
* activate: start planning and the control tick (a thread of its own, ``periodic.PeriodicThread``), and command;
* deactivate: publish the safe command once, then stop ticking and publishing;
* cleanup: stop the planner process and free the models; shutdown: the same from any state.

With ``autostart`` (the default) the node walks itself to active, as ``ros2 run`` users expect, and
a failed configure ends the process with exit code 1. Each tick reads the newest joint state and
goal itself (``inputs``; no executor callback runs for them), sends its command, then trades
requests and plans with the planner (``Policy.act``, then ``Policy.plan_ahead``). Bad input or a
failing policy yields the safe command, a diagnostic and a log line a second (the report's, not the
tick's); good input restarts the policy from the current command.
"""
from __future__ import annotations

import math
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from lifecycle_msgs.msg import State
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.subscription import MessageInfo
from rclpy.task import Future
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, Header, MultiArrayDimension

from ..core.checkpoint import CheckpointError, load_policy_models
from ..core.device import select_device
from ..core.errors import one_line
from ..core.paths import share_path
from ..core.plan_process import PlanProcess
from ..core.planning import Plan, Planning, PlanWorker
from ..core.policy import Policy, PolicyConfig
from ..core.robot import RobotDescription, urdf_differences
from ..core.runtime import RuntimeChoice, RuntimeConfig, load_action_step, load_planner_networks
from ..core.safety import StateBounds
from ..core.settings import build, setting, settings
from .command_output import COMMAND_OUTPUTS, CommandOutput
from .common import MultiThreadedExecutor, PolledGroup, apply_thread_priority, drain, run_node, take
from .inputs import GoalInput, JointStateInput
from .parameters import current_values, declare_settings, value_of
from .periodic import PeriodicThread
from .sliced_job import SlicedJob
from .tick_phase import TickPhase
from .tick_stats import TickStats

NODE_NAME = "invdyn_policy"
DIAGNOSTICS_PERIOD_S = 1.0
LATENCY_WINDOW_S = 10.0
"""Tick latency percentiles cover this much recent time."""
WARMUP_TICKS = 3
MAX_REPORTED_FAULTS = 5
"""Distinct fault reasons listed per diagnostics message."""
FROM_THE_MODELS = ("temperature",)
"""Live settings whose default is the checkpoint's (unset parameters are filled at configure)."""


def _models_path(name: str) -> str:
    return str(share_path("models", name))


@dataclass
class PolicyNodeConfig:
    """Every parameter of the node: the start-up ones here (read-only), the live ones in ``policy``."""

    planner_model_path: str = setting(default_factory=lambda: _models_path("planner_final.pth"), read_only=True)
    """Diffusion planner checkpoint (.pth); default: the package's models/planner_final.pth."""
    invdyn_model_path: str = setting(default_factory=lambda: _models_path("invdyn_enhanced_final.pth"),
                                     read_only=True)
    """Inverse dynamics checkpoint (.pth); default: the package's models/invdyn_enhanced_final.pth."""
    device: str = setting("auto", read_only=True)
    """Torch device: auto (CUDA when present, else the CPU), cpu, cuda or cuda:N."""
    execution: RuntimeConfig = field(default_factory=RuntimeConfig)
    """What runs the models (runtime)."""
    seq_length: int = setting(0, low=0, high=1000, read_only=True)
    """Inverse dynamics history length in states; 0 takes the model's, other values must match it."""
    control_rate_hz: float = setting(100.0, low=1.0, high=1000.0, read_only=True)
    """Command rate in Hz (the control tick's period); should match the models' dt (a mismatch is logged)."""
    joint_names: list[str] | None = setting(None, read_only=True)
    """Joints to control, in the models' order, picked by name from joint_states; unset: the checkpoints'."""
    command_output: str = setting("forward", choices=COMMAND_OUTPUTS, read_only=True)
    """How commands go out: 'forward', a Float64MultiArray on ~/commands for a forward controller of the models'
    command interface (forward_command_controller for effort, the position or velocity forward controller);
    'trajectory', a JointTrajectory of this command and the plan's next positions on ~/joint_trajectory for a
    joint_trajectory_controller (position interface only)."""
    robot_description: str = setting("", read_only=True)
    """The robot's URDF (as robot_state_publisher takes it); given, the models' robot description is checked
    against its joints and limits at start, and any difference stops the node."""
    action_low: list[float] | None = setting(None, read_only=True)
    """Lower command limit per joint (every command is clamped to it), within the robot's; unset: the
    checkpoint's robot description."""
    action_high: list[float] | None = setting(None, read_only=True)
    """Upper command limit per joint, within the robot's; unset: the checkpoint's robot description."""
    joint_position_low: list[float] | None = setting(None, read_only=True)
    """Lowest position each joint can have; a joint state outside the range (widened by state_range_margin) is
    refused as an input fault. Unset: the robot description's, else the training data's range."""
    joint_position_high: list[float] | None = setting(None, read_only=True)
    """Highest position each joint can have; unset: the robot description's, else the training data's."""
    joint_velocity_limit: list[float] | None = setting(None, read_only=True)
    """Largest speed of each joint; a faster joint state is refused as an input fault. Unset: the robot
    description's, else the training data's."""
    state_range_margin: float = setting(0.25, low=0.0, high=10.0, read_only=True)
    """How far past its range a joint state may read before it is refused, as a fraction of the range (of the
    speed limit for velocities)."""
    plan_in_process: bool = setting(True, read_only=True)
    """Plan in a child process (its own core, no contention with the tick for Python's interpreter lock);
    false: in a thread of this process."""
    executor_threads: int = setting(1, low=1, high=16, read_only=True)
    """Executor threads for the parameter and lifecycle services and the diagnostics while not commanding (the tick
    runs in a thread of its own and reads the joint states and goals itself): 1, a SingleThreadedExecutor; N > 1, a
    MultiThreadedExecutor."""
    thread_priority: int = setting(50, low=0, high=99, read_only=True)
    """SCHED_FIFO priority of the node's threads (0: normal scheduling); needs root, CAP_SYS_NICE or an
    rtprio limit, else a warning and normal scheduling."""
    align_tick_to_state: bool = setting(True, read_only=True)
    """Shift the tick's phase now and then so ticks fall due just after a joint state arrives (needs the
    states stamped on this machine's clock and a state period that divides the tick's)."""
    autostart: bool = setting(True, read_only=True)
    """Configure and activate at start (ros2 run); false waits for a lifecycle manager (ros2 launch)."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """The live settings: sampling, planning, smoothing and safety."""


NODE_SETTINGS = settings(PolicyNodeConfig)
LIVE_NAMES = frozenset(item.name for item in NODE_SETTINGS if not item.read_only)


class ConfigureError(Exception):
    """Configuring failed; the message is the one line the user sees."""


class InvDynPolicyNode(LifecycleNode):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        declare_settings(self, NODE_SETTINGS, unset=FROM_THE_MODELS)
        self.config = self._config()  # a bad start value stops the process (ValueError: one line)
        self.rate_hz = self.config.control_rate_hz
        self.done = Future()
        """Fails when autostart could not configure (the process then exits with 1)."""
        self.policy: Policy | None = None
        self.device: torch.device | None = None
        """Where the models run, once configured."""
        self.runtimes: dict[str, RuntimeChoice] = {}
        """What runs the inverse dynamics model and the planner, and why, once configured."""
        self._lock = threading.Lock()  # the tick and parameter updates both touch the policy
        self._priority_applied = False
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._report = SlicedJob()
        """The diagnostics report being made: while commanding, each tick makes a slice of it."""
        # Not commanding, this timer reports; commanding, it is cancelled and the tick starts the report.
        self._report_timer = self.create_timer(DIAGNOSTICS_PERIOD_S, self._report_now,
                                               callback_group=MutuallyExclusiveCallbackGroup())
        if self.config.autostart:
            self._autostart_timer = self.create_timer(0.0, self._autostart)

    def _config(self, changes: list[Parameter] = ()) -> PolicyNodeConfig:
        """The parameters (with ``changes``) as a config; raises ValueError naming an invalid value."""
        return build(PolicyNodeConfig, current_values(self, NODE_SETTINGS, changes))

    def _autostart(self) -> None:
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            self.done.set_exception(ConfigureError("configure failed"))
        elif self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            self.done.set_exception(ConfigureError("activate failed"))

    @property
    def lifecycle_state(self) -> str:
        return self._state_machine.current_state[1]

    # ---- configure: models, policy, interfaces ----------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except (ConfigureError, CheckpointError, ValueError, RuntimeError) as error:
            self.get_logger().error(f"configure failed: {one_line(error)}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        except Exception:  # a bug: rclpy's lifecycle would swallow it without a word
            self.get_logger().error(f"configure failed on an unexpected error:\n{traceback.format_exc()}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        if not self._priority_applied:  # the planner process exists now: it keeps normal scheduling
            apply_thread_priority(self, self.config.thread_priority)
            self._priority_applied = True
        self.get_logger().info(
            f"configured: {len(self.joint_names)} joints {self.joint_names}, {self.rate_hz:g} Hz on {self.device}, "
            f"planner horizon {self.policy.horizon}, history {self.policy.history_length}")
        return super().on_configure(state)

    def _configure(self) -> None:
        config = self.config
        self.device = select_device(config.device)
        seq_length = config.seq_length or None
        planner, invdyn, metadata = load_policy_models(config.planner_model_path, config.invdyn_model_path,
                                                       self.device, seq_length)
        action_step, self.runtimes["invdyn"] = load_action_step(invdyn, config.invdyn_model_path,
                                                                config.execution.runtime, self.device)
        robot = RobotDescription.from_dict(metadata["robot"]) if "robot" in metadata else None
        self.joint_names = self._joint_names(planner, invdyn, metadata, robot)
        if robot is not None:
            self._check_robot(robot)
        low, high = self._limits(robot)
        self.bounds = self._state_bounds(metadata, robot)
        if metadata.get("dt") is not None and not math.isclose(metadata["dt"], 1.0 / self.rate_hz, rel_tol=0.01):
            self.get_logger().warning(f"control period {1.0 / self.rate_hz:g} s differs from the models' dt "
                                      f"{metadata['dt']:g} s: the plans assume the models' period")
        self._fill_from_models(metadata)
        period = 1.0 / self.rate_hz
        interface = robot.command_interface if robot is not None else "effort"
        commanding = dict(interface=interface, rate_limit=self._rate_limit(robot, interface), action_step=action_step)
        warm = Policy(planner, invdyn, self.config.policy, low, high, period, **commanding)
        state = planner.normalizer.unnormalize_state(torch.zeros(planner.config.state_dim,
                                                                 device=self.device)).cpu().numpy()
        for _ in range(WARMUP_TICKS):  # the first inference is slow, and a broken model shows here
            warm.select_action(state, state[: len(self.joint_names)])
        if not warm.status.ok:
            raise ConfigureError(f"models fail on a typical state: {warm.status.reason}")
        if config.plan_in_process:
            worker = PlanProcess(config.planner_model_path, self.device, config.execution.runtime)
            self.runtimes["planner"] = worker.runtime
        else:
            networks, self.runtimes["planner"] = load_planner_networks(planner, config.planner_model_path,
                                                                       config.execution.runtime, self.device)
            worker = PlanWorker(Planning(planner, networks))
        for model, choice in self.runtimes.items():
            log = self.get_logger().warning if choice.fallback else self.get_logger().info
            log(choice.describe(model))
        self.policy = Policy(planner, invdyn, self.config.policy, low, high, period, worker, **commanding)
        self._create_interfaces(planner.config.state_dim, interface)

    def _joint_names(self, planner, invdyn, metadata: dict[str, Any], robot: RobotDescription | None) -> list[str]:
        """``joint_names`` (default: the models'), checked against the models' sizes."""
        model_joints = metadata.get("joint_names")
        names = self.config.joint_names if self.config.joint_names is not None else model_joints
        if names is None:
            raise ConfigureError("parameter joint_names must be given (the checkpoints do not name joints)")
        if model_joints is not None and list(names) != list(model_joints):
            raise ConfigureError(f"joint_names {names} do not match the models' {model_joints}")
        num_joints = len(names)
        if planner.config.state_dim != 2 * num_joints or invdyn.config.action_dim != num_joints:
            raise ConfigureError(f"{num_joints} joints need state_dim {2 * num_joints} and action_dim {num_joints}, "
                                 f"the models have {planner.config.state_dim} and {invdyn.config.action_dim}")
        if planner.config.goal_dim not in (0, num_joints):
            raise ConfigureError(f"planner goal_dim {planner.config.goal_dim} is neither 0 nor {num_joints} joints")
        return list(names)

    def _check_robot(self, robot: RobotDescription) -> None:
        """The models' robot is one this node can drive, and the URDF (when given) agrees with it."""
        if not robot.joint_state_layout:
            raise ConfigureError(f"the models' state {robot.state_names} is not every joint's position then "
                                 "velocity: this node builds the state from joint_states")
        if robot.goal_names and robot.goal_names != robot.state_names[: len(robot.joint_names)]:
            raise ConfigureError(f"the models' goal {robot.goal_names} is not the joints' positions: this node "
                                 "takes joint-position goals")
        if self.config.robot_description and (
                differences := urdf_differences(robot, self.config.robot_description)):
            raise ConfigureError(f"robot_description (URDF) and the models' robot differ: {'; '.join(differences)}")

    def _limits(self, robot: RobotDescription | None) -> tuple[np.ndarray, np.ndarray]:
        """``action_low``/``action_high``: the parameters (within the robot's), else the robot description's."""
        own = (robot.command_low, robot.command_high) if robot is not None else (None, None)
        limits = []
        for name, value in zip(("action_low", "action_high"), own):
            given = getattr(self.config, name)
            if given is None and value is None:
                raise ConfigureError(f"parameter {name} must be given (the checkpoint does not say)")
            limits.append(np.array(value if given is None else given, dtype=np.float64))
        low, high = limits
        shape = (len(self.joint_names),)
        if low.shape != shape or high.shape != shape or np.any(low > high):
            raise ConfigureError(f"action_low/action_high need {shape[0]} values each, with low <= high")
        if own[0] is not None:
            beyond = np.flatnonzero((low < np.array(own[0]) - 1e-9) | (high > np.array(own[1]) + 1e-9))
            if beyond.size:
                i = beyond[0]
                raise ConfigureError(f"action_low/action_high of joint {self.joint_names[i]} [{low[i]:g}, {high[i]:g}] "
                                     f"go beyond the robot's command limits [{own[0][i]:g}, {own[1][i]:g}]")
        return low, high

    def _rate_limit(self, robot: RobotDescription | None, interface: str) -> np.ndarray | None:
        """A position command moves at most each joint's velocity limit per second (the parameter's, else the
        robot's); other interfaces: None (the smoother's slew_rate)."""
        if interface != "position":
            return None
        limit = self.config.joint_velocity_limit or (robot.velocity_limit if robot is not None else None)
        if limit is None:
            raise ConfigureError("position commands need joint_velocity_limit (the robot description has none)")
        if len(limit) != len(self.joint_names) or min(limit) <= 0.0:
            raise ConfigureError(f"joint_velocity_limit needs {len(self.joint_names)} positive values")
        return np.array(limit, dtype=np.float64)

    def _state_bounds(self, metadata: dict[str, Any], robot: RobotDescription | None) -> StateBounds:
        """The joint states the node accepts: the declared ranges, else the robot's, else the training data's."""
        config = self.config
        declared = (config.joint_position_low, config.joint_position_high, config.joint_velocity_limit)
        described = (robot.position_low, robot.position_high, robot.velocity_limit) if robot else (None,) * 3
        if all(value is not None for value in declared):
            bounds = StateBounds.from_limits(*declared, config.state_range_margin)
        elif all(value is None for value in declared) and all(value is not None for value in described):
            bounds = StateBounds.from_limits(*described, config.state_range_margin)
        elif all(value is None for value in declared) and "state_low" in metadata:
            bounds = StateBounds.from_data(metadata["state_low"], metadata["state_high"], config.state_range_margin)
            self.get_logger().info("joint ranges not given: accepting the training data's, widened by "
                                   f"state_range_margin {config.state_range_margin:g}")
        else:
            raise ConfigureError("give joint_position_low, joint_position_high and joint_velocity_limit (all "
                                 "three; the checkpoint records neither the robot's nor its data's ranges)")
        if bounds.low.shape != (2 * len(self.joint_names),):
            raise ConfigureError(f"joint ranges need {len(self.joint_names)} values each")
        return bounds

    def _fill_from_models(self, metadata: dict[str, Any]) -> None:
        """Unset parameters that default to the checkpoint's values (the model's sampling temperature)."""
        defaults = PolicyConfig()
        fills = [Parameter(name, value=float(metadata.get(name, getattr(defaults, name))))
                 for name in FROM_THE_MODELS if value_of(self, name) is None]
        if fills and not all(result.successful for result in self.set_parameters(fills)):
            raise ConfigureError(f"the checkpoint's {', '.join(p.name for p in fills)} is out of range")

    def _create_interfaces(self, state_dim: int, interface: str) -> None:
        num_joints, horizon = len(self.joint_names), self.policy.horizon
        self._joints = JointStateInput(self.joint_names, self.config.policy.safety.state_timeout_s, self.bounds)
        self._goals = GoalInput(num_joints, self.bounds.low[:num_joints], self.bounds.high[:num_joints])
        self._state, self._goal, self._hold_goal = np.zeros(state_dim), np.zeros(num_joints), np.zeros(num_joints)
        self._faulted = True  # nothing good seen yet: the first good tick (re)starts the policy
        self._last_stamp_ns = 0  # of the state the last tick read
        self._plan_shown: Plan | None = None
        self._window_faults: list[str] = []  # distinct fault reasons since the last diagnostics (a few)
        self._window_safe_ticks, self._window_ticks, self._window_started = 0, 0, time.perf_counter()
        self.stats = TickStats(1.0 / self.rate_hz, max(100, int(LATENCY_WINDOW_S * self.rate_hz)))
        self._period_ns = round(1e9 / self.rate_hz)
        self._report_period_ticks = max(1, round(DIAGNOSTICS_PERIOD_S * self.rate_hz))
        self.phase = TickPhase()
        self._phase_shifts = 0

        # Preallocated messages: the tick only copies numbers into their arrays (through numpy views).
        self._plan_msg = Float64MultiArray(data=[0.0] * (horizon * state_dim))
        self._plan_view = np.frombuffer(self._plan_msg.data, dtype=np.float64).reshape(horizon, state_dim)
        self._plan_msg.layout.dim = [MultiArrayDimension(label="horizon", size=horizon, stride=horizon * state_dim),
                                     MultiArrayDimension(label="state", size=state_dim, stride=state_dim)]

        # Read by the tick (PolledGroup), never by the executor: 500 Hz states cost no callback each, and the tick
        # never waits behind one. Depth 1: a tick wants the newest state only (best effort matches any publisher).
        newest_state = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        self._state_sub = self.create_subscription(JointState, "joint_states", self._on_joint_state, newest_state,
                                                   callback_group=PolledGroup())
        # Goals too: a goal stream (a teleoperator, a task planner at 50 Hz) would otherwise wake the executor for
        # each, and its Python held the interpreter lock while a tick fell due (0.2-0.8 ms late here).
        self._goal_sub = self.create_subscription(Float64MultiArray, "~/goal", self._on_goal, 10,
                                                  callback_group=PolledGroup())
        try:
            self._output = CommandOutput(self, self.joint_names, interface, self.config.command_output,
                                         1.0 / self.rate_hz, horizon)
        except ValueError as error:
            raise ConfigureError(str(error)) from None
        self._plan_pub = self.create_lifecycle_publisher(Float64MultiArray, "~/planned_states", 10)
        self._tick_loop = PeriodicThread("tick", self._period_ns, self._tick, self._tick_failed,
                                         self.config.thread_priority, lambda: self.get_clock().now().nanoseconds)

    def _release(self) -> None:
        """Stop the planner and drop what configure made (whatever part of it exists)."""
        if self.policy is not None:
            self.policy.close()
            self.policy = None
        for name, destroy in (("_tick_loop", PeriodicThread.stop), ("_state_sub", self.destroy_subscription),
                              ("_goal_sub", self.destroy_subscription),
                              ("_output", lambda output: output.destroy(self)),
                              ("_plan_pub", self.destroy_lifecycle_publisher)):
            entity = self.__dict__.pop(name, None)
            if entity is not None:
                destroy(entity)

    # ---- activate / deactivate / cleanup / shutdown --------------------------------------------------------
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._lock:
            self.policy.reset()
            self._faulted = True
        result = super().on_activate(state)
        self._report_timer.cancel()
        self._tick_loop.start()
        self.get_logger().info("active: commanding")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_commanding("deactivated")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if state.state_id == State.PRIMARY_STATE_ACTIVE:
            self._stop_commanding("shutting down")
        self._release()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_error(state)

    def _stop_commanding(self, reason: str) -> None:
        """Stop the tick, then publish the safe command once: the last command the robot gets."""
        self._tick_loop.stop()
        self._report.drop()  # made while active: the next report tells the new state
        self._report_timer.reset()
        with self._lock:
            command = self.policy.safe_action(reason)
        self._publish_command(command, self._last_stamp_ns)  # answers no new state: its stamp is the last one
        self.get_logger().info(f"{reason}: sent the safe command, stopped commanding")

    def close(self) -> None:
        """On exit (a stop signal): the shutdown transition from wherever the node is."""
        if self.lifecycle_state in ("unconfigured", "inactive", "active"):
            self.trigger_shutdown()

    # ---- the control tick --------------------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState, info: MessageInfo) -> None:
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self._joints.update(msg.name, msg.position, msg.velocity, stamp_ns, time.monotonic())
        # The middleware's arrival time (system clock, as time_ns): this callback may run later, behind the tick.
        self.phase.on_state(stamp_ns, info["received_timestamp"], time.time_ns())

    def _on_goal(self, msg: Float64MultiArray) -> None:
        self._goals.update(msg.data)

    def _tick(self, due_ns: int, now_ns: int) -> None:
        """One control tick, due at ``due_ns`` and begun at ``now_ns`` (the node's clock): the newest joint state,
        the command, then the planner's trade and a slice of the diagnostics report."""
        started = time.perf_counter()
        if (taken := take(self._state_sub)) is not None:
            self._on_joint_state(*taken)
        drain(self._goal_sub)
        reason, stamp_ns = self._joints.read(time.monotonic(), self._state)
        goal_reason, has_goal = self._goals.read(self._goal)
        reason = reason or goal_reason
        goal = self._goal if has_goal else self._hold_goal
        with self._lock:
            if reason:
                command = self.policy.safe_action(reason)
                self._faulted = True
            else:
                if self._faulted:  # good input again: restart from the last command sent, hold still until a goal
                    # Nothing sent yet: a position command then starts at the measured position, not at zero.
                    self.policy.reset(initial_action=self._output.last if self._output.sent else None)
                    self._hold_goal[:] = self._state[: len(self._hold_goal)]
                    self._faulted = False
                command = self.policy.act(self._state, goal)
            status = self.policy.status
        self._publish_command(command, stamp_ns)
        self._last_stamp_ns = stamp_ns
        self.stats.record(started, time.perf_counter(), (now_ns - stamp_ns) * 1e-9 if stamp_ns else np.nan,
                          (now_ns - due_ns) * 1e-9)
        with self._lock:  # the command is out: now the planner's pickling and piping
            self.policy.plan_ahead(goal)
        if stamp_ns:
            self.phase.on_tick(due_ns - stamp_ns)
        if not status.ok:
            self._window_safe_ticks += 1
            if len(self._window_faults) < MAX_REPORTED_FAULTS and status.reason not in self._window_faults:
                self._window_faults.append(status.reason)
        elif self.policy.plan is not self._plan_shown:
            self._publish_plan(self.policy.plan)
        if self.stats.count % self._report_period_ticks == 0:
            self._report.start(self._report_slices())
        self._report.step()

    def _tick_failed(self, error: Exception) -> None:
        """A bug on the tick's path (it catches every failure it expects): the ticks stop and the process exits with
        1, sending the safe command on its way out."""
        self.get_logger().fatal(f"control tick failed: {type(error).__name__}: {error}\n"
                                f"{''.join(traceback.format_exception(error))}")
        if not self.done.done():
            self.done.set_exception(error)

    def _publish_command(self, command: np.ndarray, stamp_ns: int) -> None:
        if self.policy.has_safe_command:  # else (position, nothing measured yet): the controller holds
            self._output.publish(command, stamp_ns, self.policy)

    def _publish_plan(self, plan: Plan) -> None:
        """The executed plan (the mean over samples with sample_selection mean), once per new plan."""
        self._plan_shown = plan
        self._plan_view[:] = plan.executed.mean(dim=0).cpu().numpy()
        self._plan_pub.publish(self._plan_msg)

    # ---- parameters ----------------------------------------------------------------------------------------
    def _validate_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Refuse a set that makes an invalid config, or one the models cannot run (rclpy checks the ranges,
        types and read-only flags before this)."""
        if not any(parameter.name in LIVE_NAMES for parameter in parameters):
            return SetParametersResult(successful=True)
        try:
            config = self._config(parameters)
            if self.policy is not None:
                self.policy.check(config.policy)
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, parameters: list[Parameter]) -> None:
        if not any(parameter.name in LIVE_NAMES for parameter in parameters):
            return
        self.config = self._config()
        if self.policy is not None:
            self._joints.timeout_s = self.config.policy.safety.state_timeout_s
            with self._lock:
                self.policy.configure(self.config.policy)
        self.get_logger().info(f"parameters set: {', '.join(f'{p.name}={p.value}' for p in parameters)}")

    def _align_tick(self) -> None:
        """Move the ticks, from the one after next, by the shift the phase asks for."""
        shift_ns = self.phase.shift_ns()
        if shift_ns:
            self._tick_loop.shift(shift_ns)
            self._phase_shifts += 1
            self.phase.restart_ticks()
            way = "later" if shift_ns > 0 else "earlier"
            self.get_logger().info(f"tick phase shifted {abs(shift_ns) * 1e-6:.2f} ms {way}, to just after the "
                                   "joint states")

    # ---- diagnostics ---------------------------------------------------------------------------------------
    def _report_now(self) -> None:
        """The diagnostics report while not commanding, made at once. While commanding, the tick starts one every
        second of ticks and makes a slice of it per tick once its command is out: made at once it takes 1-2 ms
        (percentiles over 10 s of ticks and states, the message), and a tick due meanwhile would be late; and no
        timer then wakes the executor, whose Python holds the interpreter lock as a tick falls due."""
        if self.lifecycle_state == "active":
            return  # called just as the node activated (with executor threads in parallel): the tick reports
        self._report.start(self._report_slices())
        self._report.finish()

    def _report_slices(self) -> Iterator[None]:
        """The diagnostics report (with the tick's phase alignment and the log of its safe commands), a slice per
        step, each 0.2-0.5 ms here."""
        lifecycle = self.lifecycle_state
        if lifecycle != "active":
            values = {"state": lifecycle, "lifecycle_state": lifecycle}
            self._diagnostics_pub.publish(self._diagnostic(DiagnosticStatus.OK, f"{lifecycle}: not commanding",
                                                           values))
            return
        if self.config.align_tick_to_state:
            self._align_tick()
            yield
        now = time.perf_counter()
        ticks = self.stats.count
        window_ticks, window_s = ticks - self._window_ticks, now - self._window_started
        faults, safe_ticks = self._window_faults, self._window_safe_ticks
        self._window_faults, self._window_safe_ticks = [], 0
        self._window_ticks, self._window_started = ticks, now
        status, latency, state_age = self.policy.status, self.stats.latency_ms(), self.stats.state_age_ms()
        yield
        start_delay = self.stats.start_delay_ms()
        yield
        if safe_ticks:  # logged here, not by the tick: even a throttled log call costs 0.2-0.5 ms
            self.get_logger().warning(f"safe command on {safe_ticks} of {window_ticks} ticks in {window_s:.1f} s: "
                                      f"{' | '.join(faults)}")
            yield
        delays = self.phase.delays_ms()
        yield
        if not status.ok:
            level, message = DiagnosticStatus.ERROR, f"safe command: {status.reason}"
        elif faults:
            level, message = DiagnosticStatus.WARN, f"recovered from: {faults[0]}"
        else:
            level, message = DiagnosticStatus.OK, "ok"
        values = {
            "state": "ok" if status.ok else "safe",
            "lifecycle_state": lifecycle,
            "reason": status.reason,
            "faults_since_last_report": " | ".join(faults),
            "safe_ticks_since_last_report": str(safe_ticks),
            "control_rate_hz": f"{self.rate_hz:g}",
            "achieved_rate_hz": f"{window_ticks / window_s:.2f}",
            "tick_latency_p50_ms": f"{latency['p50']:.3f}",
            "tick_latency_p99_ms": f"{latency['p99']:.3f}",
            **{f"tick_start_delay_{q}_ms": f"{value:.3f}" for q, value in start_delay.items()},
            "state_age_p50_ms": f"{state_age['p50']:.3f}",
            "state_age_p99_ms": f"{state_age['p99']:.3f}",
            **{f"state_{name}_{q}_ms": f"{value:.3f}" for name, summary in delays.items()
               for q, value in summary.items()},
            "late_ticks": str(self.stats.late),
            "tick_phase_shifts": str(self._phase_shifts),
            "plan_latency_ms": f"{status.plan_seconds * 1e3:.1f}",
            "plan_age_ticks": str(status.plan_age_ticks),
            "safe_mode": self.config.policy.safety.safe_mode,
            "device": str(self.device),
            **{f"runtime_{model}": choice.runtime for model, choice in self.runtimes.items()},
        }
        report = self._diagnostic(level, message, values)
        yield
        self._diagnostics_pub.publish(report)

    def _diagnostic(self, level: bytes, message: str, values: dict[str, str]) -> DiagnosticArray:
        diagnostic = DiagnosticStatus(level=level, name=f"{self.get_name()}: control", message=message,
                                      hardware_id=str(self.device or self.config.device),
                                      values=[KeyValue(key=key, value=value) for key, value in values.items()])
        return DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[diagnostic])

    def make_executor(self) -> SingleThreadedExecutor | MultiThreadedExecutor:
        """The executor of the callbacks besides the tick (its own thread runs it): one thread by default, as they
        are rare and short; with N > 1 threads the report's timer runs beside the services (rclpy puts those in the
        node's default callback group, which runs one callback at a time)."""
        if self.config.executor_threads == 1:
            return SingleThreadedExecutor()
        return MultiThreadedExecutor(num_threads=self.config.executor_threads)


def main(args: list[str] | None = None) -> int:
    torch.set_num_threads(1)  # the tick and the planner each get one core; more threads only contend
    sys.setswitchinterval(0.0005)  # the longest the tick waits for the GIL while another callback runs Python
    return run_node(NODE_NAME, InvDynPolicyNode, (ValueError, ParameterException), InvDynPolicyNode.make_executor,
                    InvDynPolicyNode.close, until=lambda node: node.done, args=args)


if __name__ == "__main__":
    sys.exit(main())
