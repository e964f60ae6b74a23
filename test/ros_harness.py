"""A fake robot for the node tests: publishes joint states, records the policy's commands and diagnostics.

It runs in the test process, in the same private ROS domain as the node under test, spun by a
background executor. Joint states go out from a timer at 100 Hz; ``corrupt`` turns each good
message into a bad one (or None: publish nothing) for the bad-input tests.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.node import Node
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.parameter_client import AsyncParameterClient
from rclpy.time import Time
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from fastpolicy_invdyn_ros.ros.common import spinning

JOINTS = ["base_yaw", "shoulder_pitch", "elbow_pitch"]
POSITIONS = [0.3, -0.4, 0.8]
VELOCITIES = [0.05, -0.1, 0.2]
STATE_PERIOD_S = 0.01  # the tick's rate, as from a 100 Hz driver

Corruption = Callable[[JointState, int, TimeMsg], JointState | None]
"""(a good message, the count of messages so far, the stamp of the last one published) -> what to publish instead."""


class FakeRobot(Node):
    def __init__(self, policy_name: str = "invdyn_policy") -> None:
        super().__init__("fake_robot")
        self.order = list(range(len(JOINTS)))
        """Order in which joints are listed in the published messages (names and values alike)."""
        self.positions, self.velocities = list(POSITIONS), list(VELOCITIES)
        self.corrupt: Corruption | None = None
        self.process: subprocess.Popen | None = None
        """The node under test (set by the test fixture)."""
        self._lock = threading.Lock()
        self._count = 0
        self.commands: list[np.ndarray] = []
        self.command_stamps: list[int] = []
        """The stamp (ns) of the state each command was computed from (the last good one for a safe command)."""
        self.command_arrivals_ns: list[int] = []
        """When each command arrived here (time.monotonic_ns)."""
        self.corrupted_since_ns: int | None = None
        """When the first corrupted (or withheld) state of the current corruption was due (time.monotonic_ns): this
        process's timer may run late on a busy machine, and the node cannot react to a state not yet sent."""
        self.good_stamps: set[int] = set()
        """The stamps (ns) of the states published uncorrupted."""
        self._previous_stamp = TimeMsg()
        self.diagnostics: list[DiagnosticStatus] = []
        self.plans: list[Float64MultiArray] = []
        self._state_pub = self.create_publisher(JointState, "joint_states", 10)
        self._goal_pub = self.create_publisher(Float64MultiArray, f"/{policy_name}/goal", 10)
        self.create_subscription(JointState, f"/{policy_name}/command_stamped", self._on_command, 100)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.create_subscription(Float64MultiArray, f"/{policy_name}/planned_states", self.plans.append, 10)
        self.parameters = AsyncParameterClient(self, policy_name)
        self._change_state = self.create_client(ChangeState, f"/{policy_name}/change_state")
        self._get_state = self.create_client(GetState, f"/{policy_name}/get_state")
        self._state_timer = self.create_timer(STATE_PERIOD_S, self._publish_state)
        self._phase_jump_ns = 0

    def jump_state_phase(self, seconds: float) -> None:
        """Make one state period ``seconds`` longer: the stream's phase moves by that much for good."""
        self._phase_jump_ns = round(seconds * 1e9)

    def _publish_state(self) -> None:
        # Stamped with the moment of the timer's schedule this message stands for, as a driver stamps its
        # measurement, not with when this Python callback got to run (which jitters by milliseconds here).
        # rcl computed the next call with the period in force: read both before changing it.
        now_ns = self.get_clock().now().nanoseconds
        stamp_ns = now_ns + self._state_timer.time_until_next_call() - self._state_timer.timer_period_ns
        # A period set here applies to the interval after the next one (rcl computed the next call already).
        if self._state_timer.timer_period_ns != round(STATE_PERIOD_S * 1e9):
            self._state_timer.timer_period_ns = round(STATE_PERIOD_S * 1e9)
        elif self._phase_jump_ns:
            self._state_timer.timer_period_ns = round(STATE_PERIOD_S * 1e9) + self._phase_jump_ns
            self._phase_jump_ns = 0
        msg = JointState(name=[JOINTS[i] for i in self.order], position=[self.positions[i] for i in self.order],
                         velocity=[self.velocities[i] for i in self.order])
        msg.header.stamp = Time(nanoseconds=stamp_ns).to_msg()
        self._count += 1
        corrupt = self.corrupt  # read once: the test thread may reset it meanwhile
        if corrupt is None:
            self.good_stamps.add(stamp_ns)
            self.corrupted_since_ns = None
        else:
            if self.corrupted_since_ns is None:
                self.corrupted_since_ns = time.monotonic_ns()
            msg = corrupt(msg, self._count, self._previous_stamp)
        if msg is not None:
            self._state_pub.publish(msg)
            self._previous_stamp = msg.header.stamp

    def _on_command(self, msg: JointState) -> None:
        if msg.header.stamp.sec or msg.header.stamp.nanosec:  # computed from one of our states
            with self._lock:  # the field of the models' command interface
                self.commands.append(np.array(msg.effort or msg.position or msg.velocity))
                self.command_stamps.append(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
                self.command_arrivals_ns.append(time.monotonic_ns())

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self._lock:
            self.diagnostics.extend(status for status in msg.status if status.name.startswith("invdyn_policy"))

    def publish_goal(self, values: list[float]) -> None:
        self._goal_pub.publish(Float64MultiArray(data=values))

    def collect(self, seconds: float) -> np.ndarray:
        """The commands received over the next ``seconds``."""
        return self.collect_stamped(seconds)[0]

    def collect_stamped(self, seconds: float) -> tuple[np.ndarray, list[int], list[int]]:
        """The commands received over the next ``seconds``, the stamps of the states they answer and when they
        arrived (time.monotonic_ns)."""
        with self._lock:
            start = len(self.commands)
        time.sleep(seconds)
        with self._lock:
            return np.array(self.commands[start:]), self.command_stamps[start:], self.command_arrivals_ns[start:]

    def diagnostics_since(self, index: int) -> list[DiagnosticStatus]:
        with self._lock:
            return list(self.diagnostics[index:])

    def diagnostic_value(self, key: str) -> str | None:
        """The value of ``key`` in the newest diagnostics (None before any)."""
        with self._lock:
            values = {value.key: value.value for value in self.diagnostics[-1].values} if self.diagnostics else {}
        return values.get(key)

    def set_remote(self, **values: object) -> list:
        """Set parameters through the node's SetParameters service (what ``ros2 param set`` calls)."""
        future = self.parameters.set_parameters([Parameter(name, value=value) for name, value in values.items()])
        return wait_future(future).results

    def get_remote(self, name: str) -> object:
        """The parameter's value (None: unset)."""
        values = wait_future(self.parameters.get_parameters([name])).values
        return parameter_value_to_python(values[0]) if values else None

    def change_state(self, label: str, timeout_s: float = 60.0) -> bool:
        """Ask for a lifecycle transition by label (configure, activate, ...), as ``ros2 lifecycle set`` does."""
        assert self._change_state.wait_for_service(timeout_sec=timeout_s), "no change_state service"
        request = ChangeState.Request(transition=Transition(label=label))
        return wait_future(self._change_state.call_async(request), timeout_s).success

    def lifecycle_state(self) -> str:
        """The node's lifecycle state label (``ros2 lifecycle get``)."""
        assert self._get_state.wait_for_service(timeout_sec=30.0), "no get_state service"
        return wait_future(self._get_state.call_async(GetState.Request())).current_state.label


def wait_future(future, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while not future.done():
        if time.monotonic() > deadline:
            raise TimeoutError("no answer from the node's parameter service")
        time.sleep(0.01)
    return future.result()


def is_safe(command: np.ndarray) -> bool:
    """The safe command of the test configuration (safe_mode zero, smoothing off): exactly zero."""
    return bool(np.all(command == 0.0))


def diagnostic_text(status: DiagnosticStatus) -> str:
    return status.message + " " + " ".join(f"{value.key}={value.value}" for value in status.values)


class RobotSession:
    """rclpy in this process with a ``FakeRobot`` spinning in a background thread."""

    def __init__(self) -> None:
        # The test thread must not hold the interpreter lock for long between a state's stamp and its
        # publication (default 5 ms): a robot driver publishes what it stamps at once.
        sys.setswitchinterval(0.0005)
        self._session = ExitStack()
        self.robot = self._session.enter_context(spinning(FakeRobot))

    def close(self) -> None:
        self._session.close()


# A seeded planner, no warm start, no smoothing, and a sample chosen from the plans alone (``consistent``
# also looks at the plan being executed, which depends on how many ticks planning took): for the same
# input the commands repeat exactly. Safe mode zero: the safe command is exactly 0.
TEST_PARAMETERS = {
    "safe_mode": "zero",
    "sample_selection": "mode",
    "smoothing_enabled": False,
    "plan_seed": 0,
    "warm_start": False,
    "use_probabilistic_sampling": True,
    "temperature": 0.0,
    "replan_every": 2,
}
RATE_HZ = 100.0  # config/invdyn_policy.yaml


def controlling(robot: FakeRobot, ticks: int = 5) -> bool:
    """The next few commands come from the policy (none is the safe command)."""
    commands = robot.collect(ticks / RATE_HZ + 0.02)
    return len(commands) >= ticks and not any(is_safe(command) for command in commands)
