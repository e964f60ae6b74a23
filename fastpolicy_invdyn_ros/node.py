"""The ``invdyn_policy`` node: the learned policy as a ROS 2 controller.

    ros2 run fastpolicy_invdyn_ros invdyn_policy --ros-args --params-file config/invdyn_policy.yaml

Thin wiring over ``Policy`` (planning runs in a child process, never in the tick): joint
states in, commands out at ``control_rate_hz`` from a timer in its own callback group; each tick
sends its command before it trades requests and plans with the planner (``Policy.act``, then
``Policy.plan_ahead``). Bad input (``inputs.py``) or a failing policy yields the configured
safe command, a diagnostic and a throttled log line; good input restarts the policy from the
current command.
"""
from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, Header, MultiArrayDimension

from .checkpoint import CheckpointError, load_invdyn, load_planner, read_checkpoint
from .device import select_device
from .inputs import GoalInput, JointStateInput
from .invdyn import InvDynamic
from .paths import share_path
from .plan_process import PlanProcess
from .planner import DiffusionPlanner
from .policy import SAFE_MODES, Plan, Planning, PlanWorker, Policy, PolicyConfig
from .ros_common import (MultiThreadedExecutor, apply_thread_priority, declare_thread_priority, describe, init,
                          run_node, take)
from .smoothing import SmootherConfig
from .tick_phase import TickPhase
from .tick_stats import TickStats

NODE_NAME = "invdyn_policy"
DIAGNOSTICS_PERIOD_S = 1.0
LATENCY_WINDOW_S = 10.0
"""Tick latency percentiles cover this much recent time."""
WARMUP_TICKS = 3
MAX_REPORTED_FAULTS = 5
"""Distinct fault reasons listed per diagnostics message."""


class StartupError(Exception):
    """Stops the node at start; the message is the one line the user sees."""


def policy_config(values: dict[str, Any]) -> PolicyConfig:
    """The run-time settings named by the live parameters; raises ValueError with the reason if invalid."""
    return PolicyConfig(
        temperature=values["temperature"],
        use_probabilistic_sampling=values["use_probabilistic_sampling"],
        num_inference_samples=values["num_inference_samples"],
        num_inference_steps=values["num_inference_steps"],
        warm_start=values["warm_start"],
        replan_every=values["replan_every"],
        plan_seed=values["plan_seed"],
        safe_mode=values["safe_mode"],
        smoothing=SmootherConfig(enabled=values["smoothing_enabled"], cutoff_hz=values["smoothing_cutoff_hz"],
                                 slew_rate=values["slew_rate"]),
    )


def load_models(planner_path: str, invdyn_path: str, device: torch.device,
                seq_length: int) -> tuple[DiffusionPlanner, InvDynamic, dict[str, Any]]:
    """Both models, checked against each other, and their metadata (joint_names, dt, temperature) merged."""
    planner = load_planner(planner_path, device)
    invdyn = load_invdyn(invdyn_path, device, state_dim=planner.config.state_dim, seq_length=seq_length or None)
    planner_metadata, metadata = read_checkpoint(planner_path)["metadata"], read_checkpoint(invdyn_path)["metadata"]
    # A period inferred from a recording (trainer --bag) is the nominal one only to within its jitter.
    same = {"joint_names": lambda a, b: a == b, "dt": lambda a, b: math.isclose(a, b, rel_tol=0.01)}
    for key, equal in same.items():
        if key in planner_metadata and not equal(metadata.setdefault(key, planner_metadata[key]), planner_metadata[key]):
            raise CheckpointError(f"{invdyn_path}: {key} {metadata[key]} differs from the planner's "
                                  f"{planner_metadata[key]}")
    return planner, invdyn, metadata


def sim_torque_limit(joint_names: list[str]) -> list[float] | None:
    """The simulated arm's torque limits when these are its joints (the default action limits)."""
    from .sim.arm import ArmSim

    sim = ArmSim()
    return sim.torque_limit.tolist() if joint_names == sim.joint_names else None


class InvDynPolicyNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.device = self._declare_models()
        self._declare_live_parameters()
        self._build_policy()
        self._create_interfaces()
        apply_thread_priority(self, self.thread_priority)  # planner process started: it stays normal
        self.get_logger().info(
            f"ready: {len(self.joint_names)} joints {self.joint_names}, {self.rate_hz:g} Hz on {self.device}, "
            f"planner horizon {self.policy.horizon}, history {self.policy.history_length}")

    # ---- start: parameters, models, policy ------------------------------------------------------------
    def _declare_models(self) -> torch.device:
        """Read-only parameters and the models they name; every problem becomes one StartupError line."""
        declare = self.declare_parameter
        planner_path = declare("planner_model_path", str(share_path("models", "planner_final.pth")),
                               describe("Diffusion planner checkpoint (.pth)", read_only=True)).value
        invdyn_path = declare("invdyn_model_path", str(share_path("models", "invdyn_enhanced_final.pth")),
                              describe("Inverse dynamics checkpoint (.pth)", read_only=True)).value
        device_name = declare("device", "auto", describe("auto (CUDA when present), cpu, cuda or cuda:N",
                                                         read_only=True)).value
        seq_length = declare("seq_length", 0, describe("Inverse dynamics history length; 0 takes the model's, "
                                                       "other values must match it", read_only=True,
                                                       ints=(0, 1000))).value
        self.rate_hz = declare("control_rate_hz", 100.0, describe("Command rate (Hz)", read_only=True,
                                                                  floats=(1.0, 1000.0))).value
        self.thread_priority = declare_thread_priority(
            self, 50, "the node's threads at start, the tick's with executor_threads 1")
        self.executor_threads = declare("executor_threads", 1, describe(
            "Executor threads: 1 runs every callback in one thread (SingleThreadedExecutor), N > 1 a "
            "MultiThreadedExecutor with the tick in its own callback group", read_only=True, ints=(1, 16))).value
        self.plan_in_process = declare("plan_in_process", True, describe(
            "Plan in a child process (true) or a thread of this one (false: it competes with the tick for "
            "Python's interpreter lock)", read_only=True)).value
        self.align_tick = declare("align_tick_to_state", True, describe(
            "Shift the tick timer's phase once in a while so ticks start just after a joint state arrives: the "
            "state each tick reads is up to one state period younger (needs the states stamped on this clock)",
            read_only=True)).value
        self.planner_path = planner_path
        try:
            device = select_device(device_name)
            self.planner, self.invdyn, self.metadata = load_models(planner_path, invdyn_path, device, seq_length)
        except (CheckpointError, ValueError, RuntimeError) as error:
            raise StartupError(str(error)) from None
        self._declare_joints()
        self._declare_limits()
        model_dt = self.metadata.get("dt")
        if model_dt is not None and not math.isclose(model_dt, 1.0 / self.rate_hz, rel_tol=0.01):
            self.get_logger().warning(f"control period {1.0 / self.rate_hz:g} s differs from the models' dt "
                                      f"{model_dt:g} s: the plans assume the models' period")
        return device

    def _declare_joints(self) -> None:
        """``joint_names`` (default: the models'), checked against the models' sizes."""
        model_joints = self.metadata.get("joint_names")
        self.joint_names = self._declare_required(
            "joint_names", model_joints, Parameter.Type.STRING_ARRAY,
            "Joints to control, in the models' order; picked by name from joint_states (default: the models')")
        if model_joints is not None and self.joint_names != model_joints:
            raise StartupError(f"joint_names {self.joint_names} do not match the models' {model_joints}")
        num_joints, planner = len(self.joint_names), self.planner.config
        if planner.state_dim != 2 * num_joints or self.invdyn.config.action_dim != num_joints:
            raise StartupError(f"{num_joints} joints need state_dim {2 * num_joints} and action_dim {num_joints}, "
                               f"the models have {planner.state_dim} and {self.invdyn.config.action_dim}")
        if planner.goal_dim not in (0, num_joints):
            raise StartupError(f"planner goal_dim {planner.goal_dim} is neither 0 nor {num_joints} joints")

    def _declare_limits(self) -> None:
        """``action_low``/``action_high`` (default: the simulated arm's torque limits for its joints)."""
        limit = sim_torque_limit(self.joint_names)
        self.action_high = np.array(self._declare_required(
            "action_high", limit, Parameter.Type.DOUBLE_ARRAY,
            "Upper command limits, one per joint (default: the simulated arm's torque limits)"))
        self.action_low = np.array(self._declare_required(
            "action_low", None if limit is None else [-value for value in limit], Parameter.Type.DOUBLE_ARRAY,
            "Lower command limits, one per joint (default: minus the simulated arm's torque limits)"))
        shape = (len(self.joint_names),)
        low, high = self.action_low, self.action_high
        if low.shape != shape or high.shape != shape or np.any(low > high):
            raise StartupError(f"action_low/action_high need {shape[0]} values each, with low <= high")

    def _declare_required(self, name: str, default: Any, kind: Parameter.Type, description: str) -> Any:
        """A read-only parameter whose default comes from the models; unset and no default stops the node."""
        descriptor = describe(description, read_only=True)
        value = self.declare_parameter(name, default if default is not None else kind, descriptor).value
        if value is None:
            raise StartupError(f"parameter {name} must be given (the models do not say)")
        return list(value)

    def _declare_live_parameters(self) -> None:
        """The run-time tunables; start values get the same validation as later sets."""
        defaults = PolicyConfig()
        model_temperature = self.metadata.get("temperature", defaults.temperature)
        planner = self.planner.config
        live = {
            "temperature": (float(model_temperature), describe(
                "Sampling temperature of a probabilistic inverse dynamics model (0: its mean; default: the model's)",
                floats=(0.0, 10.0))),
            "use_probabilistic_sampling": (defaults.use_probabilistic_sampling, describe(
                "Sample actions at temperature from a probabilistic model; false uses its mean")),
            "num_inference_samples": (defaults.num_inference_samples, describe(
                "Plans drawn per replan (one batch); their actions are averaged", ints=(1, 256))),
            "num_inference_steps": (defaults.num_inference_steps, describe(
                "DDIM denoising steps of a cold-start plan", ints=(1, planner.num_train_timesteps))),
            "warm_start": (defaults.warm_start, describe("Start each plan from the previous one")),
            "replan_every": (defaults.replan_every, describe(
                "Ticks between plans; at most the planner's horizon", ints=(1, planner.horizon))),
            "plan_seed": (defaults.plan_seed, describe(
                "Seed of every plan's noise, -1 for none (seeded: the same input gives the same plan)",
                ints=(-1, 2**31 - 1))),
            "safe_mode": (defaults.safe_mode, describe(
                f"Safe command on bad input or failure: one of {SAFE_MODES} (hold the last command or ramp to zero)")),
            "smoothing_enabled": (defaults.smoothing.enabled, describe(
                "Low-pass filter and slew limit the commands (the clamp always applies)")),
            "smoothing_cutoff_hz": (defaults.smoothing.cutoff_hz, describe(
                "Low-pass cutoff in Hz (0: no filter)", floats=(0.0, 10000.0))),
            "slew_rate": (defaults.smoothing.slew_rate, describe(
                "Largest command change per second, action units/s (0: no limit)", floats=(0.0, 1e9))),
            "state_timeout_s": (0.1, describe(
                "Safe command when no valid joint_states arrived for this long (s)", floats=(0.001, 60.0))),
        }
        self.live_names = tuple(live)
        for name, (default, descriptor) in live.items():
            self.declare_parameter(name, default, descriptor)
        try:
            self.config = policy_config(self._live_values())
        except ValueError as error:
            raise StartupError(f"invalid parameter: {error}") from None

    def _live_values(self, changes: Sequence[Parameter] = ()) -> dict[str, Any]:
        values = {name: self.get_parameter(name).value for name in self.live_names}
        values.update({parameter.name: parameter.value for parameter in changes})
        return values

    def _build_policy(self) -> None:
        """Warm up on a synchronous copy (first inference is slow, and a broken model shows here), then start."""
        period = 1.0 / self.rate_hz
        warm = Policy(self.planner, self.invdyn, self.config, self.action_low, self.action_high, period)
        state = self.planner.normalizer.unnormalize_state(torch.zeros(self.planner.config.state_dim,
                                                                      device=self.device)).cpu().numpy()
        for _ in range(WARMUP_TICKS):
            warm.select_action(state, state[: len(self.joint_names)])
        if not warm.status.ok:
            raise StartupError(f"models fail on a typical state: {warm.status.reason}")
        try:
            worker = (PlanProcess(self.planner_path, self.device) if self.plan_in_process
                      else PlanWorker(Planning(self.planner)))
        except RuntimeError as error:
            raise StartupError(str(error)) from None
        self.policy = Policy(self.planner, self.invdyn, self.config, self.action_low, self.action_high, period,
                             worker)

    # ---- interfaces ----------------------------------------------------------------------------------------
    def _create_interfaces(self) -> None:
        num_joints, state_dim, horizon = len(self.joint_names), self.planner.config.state_dim, self.policy.horizon
        self._policy_lock = threading.Lock()  # the tick and parameter updates both touch the policy
        self._joints = JointStateInput(self.joint_names, self.get_parameter("state_timeout_s").value)
        self._goals = GoalInput(num_joints)
        self._state, self._goal, self._hold_goal = np.zeros(state_dim), np.zeros(num_joints), np.zeros(num_joints)
        self._faulted = True  # nothing good seen yet: the first good tick (re)starts the policy
        self._plan_shown = None
        self._window_faults: list[str] = []  # distinct fault reasons since the last diagnostics (a few)
        self._window_safe_ticks, self._window_ticks, self._window_started = 0, 0, time.perf_counter()
        self.stats = TickStats(1.0 / self.rate_hz, max(100, int(LATENCY_WINDOW_S * self.rate_hz)))
        self._period_ns = round(1e9 / self.rate_hz)
        self.phase = TickPhase()
        self._phase_shifts = 0
        self._shift_ns = 0  # the timer's period is longer by this until the next tick restores it

        # Preallocated messages: the tick only copies numbers into their arrays (through numpy views).
        self._command_msg = Float64MultiArray(data=[0.0] * num_joints)
        self._stamped_msg = JointState(name=list(self.joint_names), effort=[0.0] * num_joints)
        self._command_view = np.frombuffer(self._command_msg.data, dtype=np.float64)
        self._effort_view = np.frombuffer(self._stamped_msg.effort, dtype=np.float64)
        self._plan_msg = Float64MultiArray(data=[0.0] * (horizon * state_dim))
        self._plan_view = np.frombuffer(self._plan_msg.data, dtype=np.float64).reshape(horizon, state_dim)
        self._plan_msg.layout.dim = [MultiArrayDimension(label="horizon", size=horizon, stride=horizon * state_dim),
                                     MultiArrayDimension(label="state", size=state_dim, stride=state_dim)]

        # One group each: in rclpy a busy group leaves its other callbacks out of the executor's wait, so
        # 500 Hz joint states sharing a group would starve the goal and the diagnostics (and the tick).
        group = MutuallyExclusiveCallbackGroup
        # Depth 1: a tick wants the newest state only, never a queue of old ones (best effort matches any publisher).
        newest_state = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        self._state_sub = self.create_subscription(JointState, "joint_states", self._on_joint_state, newest_state,
                                                   callback_group=group())
        self.create_subscription(Float64MultiArray, "~/goal", self._on_goal, 10, callback_group=group())
        self._command_pub = self.create_publisher(Float64MultiArray, "~/commands", 10)
        self._stamped_pub = self.create_publisher(JointState, "~/command_stamped", 10)
        self._plan_pub = self.create_publisher(Float64MultiArray, "~/planned_states", 10)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics, callback_group=group())
        self._tick_timer = self.create_timer(1.0 / self.rate_hz, self._tick, callback_group=group())

    def _on_joint_state(self, msg: JointState, info: MessageInfo) -> None:
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self._joints.update(msg.name, msg.position, msg.velocity, stamp_ns, time.monotonic())
        # The middleware's arrival time (system clock, as time_ns): this callback may run later, behind the tick.
        self.phase.on_state(stamp_ns, info["received_timestamp"], time.time_ns())

    def _on_goal(self, msg: Float64MultiArray) -> None:
        self._goals.update(msg.data)

    # ---- the control tick --------------------------------------------------------------------------------
    def _tick(self) -> None:
        started = time.perf_counter()
        now_ns = self.get_clock().now().nanoseconds
        # When this tick was due: its start may wait for a callback (a joint state's, often).
        due_ns = now_ns + self._tick_timer.time_until_next_call() - (self._period_ns + self._shift_ns)
        if self._shift_ns:  # the one longer period that shifts the phase has begun
            self._tick_timer.timer_period_ns = self._period_ns
            self._shift_ns = 0
        # A state that arrived with the tick's due time: rclpy's executor runs ready timers before ready
        # subscriptions, so its callback would come after this tick. Taken here, it is this tick's.
        if (taken := take(self._state_sub)) is not None:
            self._on_joint_state(*taken)
        reason, stamp_ns = self._joints.read(time.monotonic(), self._state)
        goal_reason, has_goal = self._goals.read(self._goal)
        reason = reason or goal_reason
        goal = self._goal if has_goal else self._hold_goal
        with self._policy_lock:
            if reason:
                command = self.policy.safe_action(reason)
                self._faulted = True
            else:
                if self._faulted:  # good input again: restart from the current command, hold still until a goal
                    self.policy.reset(initial_action=self._command_view)
                    self._hold_goal[:] = self._state[: len(self._hold_goal)]
                    self._faulted = False
                command = self.policy.act(self._state, goal)
            status = self.policy.status
        self._publish_command(command, stamp_ns)
        self.stats.record(started, time.perf_counter(), (now_ns - stamp_ns) * 1e-9 if stamp_ns else np.nan)
        with self._policy_lock:  # the command is out: now the planner's pickling and piping
            self.policy.plan_ahead(goal)
        if stamp_ns:
            self.phase.on_tick(due_ns - stamp_ns)
        if not status.ok:
            self._window_safe_ticks += 1
            if len(self._window_faults) < MAX_REPORTED_FAULTS and status.reason not in self._window_faults:
                self._window_faults.append(status.reason)
            self.get_logger().warning(f"safe command: {status.reason}", throttle_duration_sec=1.0)
        elif self.policy.plan is not self._plan_shown:
            self._publish_plan(self.policy.plan)

    def _publish_command(self, command: np.ndarray, stamp_ns: int) -> None:
        self._command_view[:] = command
        self._effort_view[:] = command
        self._command_pub.publish(self._command_msg)
        stamp = self._stamped_msg.header.stamp
        stamp.sec, stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        self._stamped_pub.publish(self._stamped_msg)

    def _publish_plan(self, plan: Plan) -> None:
        """The mean plan over samples, once per new plan."""
        self._plan_shown = plan
        self._plan_view[:] = plan.states.mean(dim=0).cpu().numpy()
        self._plan_pub.publish(self._plan_msg)

    # ---- parameters ----------------------------------------------------------------------------------------
    def _validate_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Refuse a set that makes an invalid PolicyConfig (ranges and read-only are checked by rclpy)."""
        if not any(parameter.name in self.live_names for parameter in parameters):
            return SetParametersResult(successful=True)
        try:
            policy_config(self._live_values(parameters))
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, parameters: list[Parameter]) -> None:
        if not any(parameter.name in self.live_names for parameter in parameters):
            return
        self.config = policy_config(self._live_values())
        self._joints.timeout_s = self.get_parameter("state_timeout_s").value
        with self._policy_lock:
            self.policy.configure(self.config)
        self.get_logger().info(f"parameters set: {', '.join(f'{p.name}={p.value}' for p in parameters)}")

    def _align_tick(self) -> None:
        """Make the next-but-one tick period longer by the shift the phase asks for (the tick restores it)."""
        shift_ns = self.phase.shift_ns()
        if shift_ns and not self._shift_ns:
            self._tick_timer.timer_period_ns = self._period_ns + shift_ns
            self._shift_ns = shift_ns
            self._phase_shifts += 1
            self.phase.restart_ticks()
            self.get_logger().info(f"tick phase shifted {shift_ns * 1e-6:.2f} ms later, to just after the joint states")

    # ---- diagnostics ---------------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        if self.align_tick:
            self._align_tick()
        now = time.perf_counter()
        ticks = self.stats.count
        rate = (ticks - self._window_ticks) / (now - self._window_started)
        faults, safe_ticks = self._window_faults, self._window_safe_ticks
        self._window_faults, self._window_safe_ticks = [], 0
        self._window_ticks, self._window_started = ticks, now
        status, latency, state_age = self.policy.status, self.stats.latency_ms(), self.stats.state_age_ms()
        if not status.ok:
            level, message = DiagnosticStatus.ERROR, f"safe command: {status.reason}"
        elif faults:
            level, message = DiagnosticStatus.WARN, f"recovered from: {faults[0]}"
        else:
            level, message = DiagnosticStatus.OK, "ok"
        values = {
            "state": "ok" if status.ok else "safe",
            "reason": status.reason,
            "faults_since_last_report": " | ".join(faults),
            "safe_ticks_since_last_report": str(safe_ticks),
            "control_rate_hz": f"{self.rate_hz:g}",
            "achieved_rate_hz": f"{rate:.2f}",
            "tick_latency_p50_ms": f"{latency['p50']:.3f}",
            "tick_latency_p99_ms": f"{latency['p99']:.3f}",
            "state_age_p50_ms": f"{state_age['p50']:.3f}",
            "state_age_p99_ms": f"{state_age['p99']:.3f}",
            **{f"state_{name}_{q}_ms": f"{value:.3f}" for name, summary in self.phase.delays_ms().items()
               for q, value in summary.items()},
            "late_ticks": str(self.stats.late),
            "tick_phase_shifts": str(self._phase_shifts),
            "plan_latency_ms": f"{status.plan_seconds * 1e3:.1f}",
            "plan_age_ticks": str(status.plan_age_ticks),
            "safe_mode": self.config.safe_mode,
            "device": str(self.device),
        }
        diagnostic = DiagnosticStatus(level=level, name=f"{self.get_name()}: control", message=message,
                                      hardware_id=str(self.device),
                                      values=[KeyValue(key=key, value=value) for key, value in values.items()])
        header = Header(stamp=self.get_clock().now().to_msg())
        self._diagnostics_pub.publish(DiagnosticArray(header=header, status=[diagnostic]))

    def make_executor(self) -> SingleThreadedExecutor | MultiThreadedExecutor:
        """One thread by default: the tick then never waits for Python's interpreter lock behind another
        callback between its PyTorch calls (the callback groups let N > 1 threads run them in parallel)."""
        if self.executor_threads == 1:
            return SingleThreadedExecutor()
        return MultiThreadedExecutor(num_threads=self.executor_threads)

    def close(self) -> None:
        self.policy.close()


def main(args: list[str] | None = None) -> int:
    torch.set_num_threads(1)  # the tick and the planner each get one core; more threads only contend
    sys.setswitchinterval(0.0005)  # the longest the tick waits for the GIL while another callback runs Python
    init(args)
    return run_node(NODE_NAME, InvDynPolicyNode, (StartupError, ParameterException),
                    InvDynPolicyNode.make_executor, InvDynPolicyNode.close)

if __name__ == "__main__":
    sys.exit(main())
