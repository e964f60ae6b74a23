"""The simulated arm and the policy as separate ROS 2 processes, watched from this one (demo, benchmark, tests).

Each run gets a private ROS domain and localhost-only discovery, so runs on one machine do not
see each other. Processes are started from their console scripts with the package's YAML files,
as the launch files start them, and stopped with SIGINT, then SIGKILL.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import JointState

from .metrics import percentiles_ms, rms_jerk
from .paths import PACKAGE, share_path
from .ros_common import apply_thread_priority

CONTROLLER_TOPIC = "/forward_command_controller/commands"
"""Where the policy's ``~/commands`` go: the ros2_control forward_command_controller's input."""


def private_domain_id() -> int:
    """A ROS domain for one run; random, so concurrent runs rarely share one (valid ids: 0-101)."""
    return random.randint(10, 101)


def ros_environment(domain_id: int) -> dict[str, str]:
    """This process's environment for a child node: the private domain, localhost discovery, one thread."""
    return {**os.environ, "ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def use_domain(domain_id: int) -> None:
    """Put this process in the run's domain (call before ``rclpy.init``)."""
    os.environ.update({"ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"})


def find_executable(name: str) -> str:
    """A console script of this package: beside the running script or Python (pip, colcon), or on PATH."""
    beside = [Path(sys.argv[0]).resolve().parent, Path(sys.executable).parent]
    colcon = [Path(prefix) / "lib" / PACKAGE for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
              if prefix]
    path = os.pathsep.join(str(directory) for directory in beside + colcon) + os.pathsep + os.environ.get("PATH", "")
    found = shutil.which(name, path=path)
    if found is None:
        raise FileNotFoundError(f"console script {name!r} not found; install the package (make setup or colcon build)")
    return found


def node_command(executable: str, params_file: Path, overrides: dict[str, object] | None = None,
                 remaps: dict[str, str] | None = None) -> list[str]:
    """``<executable> --ros-args --params-file <file> -p name:=value ... -r from:=to ...``."""
    command = [find_executable(executable), "--ros-args", "--params-file", str(params_file)]
    for name, value in (overrides or {}).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        command += ["-p", f"{name}:={text}"]
    for source, target in (remaps or {}).items():
        command += ["-r", f"{source}:={target}"]
    return command


def start(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Run a node with its output going to ``log_path``."""
    with open(log_path, "w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen, timeout_s: float = 10.0) -> int:
    """SIGINT (the node shuts down and writes its outputs), then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def policy_command(overrides: dict[str, object] | None = None) -> list[str]:
    """The policy node as the launch file runs it: the package YAML and ``~/commands`` on the controller topic."""
    return node_command("invdyn_policy", share_path("config", "invdyn_policy.yaml"), overrides,
                        {"~/commands": CONTROLLER_TOPIC})


def sim_command(overrides: dict[str, object] | None = None) -> list[str]:
    return node_command("arm_sim", share_path("config", "arm_sim.yaml"), overrides)


@dataclass
class CommandStats:
    """What a ``CommandMonitor`` saw over a run."""

    count: int
    """Commands received."""
    rate_hz: float
    """Commands per second, first to last."""
    latency_ms: dict[str, float]
    """State-to-command latency p50/p99 (ms): the command's arrival here minus the stamp of the joint
    state it was computed from, both on this machine's clock; over the commands computed from a state
    newer than the previous command's (a safe command on stale input answers no new state)."""
    sent_latency_ms: dict[str, float]
    """The same up to the command's sending (its DDS source timestamp): the part spent before the
    policy's publish (the simulator's, the state's transport, the wait for the tick, the tick); the
    rest of ``latency_ms`` is the command's transport."""
    late_ticks: int
    """Commands sent more than one period late (more than two periods after the previous one)."""
    jerk: float
    """RMS jerk of the commands (action units per step^3, ``metrics.rms_jerk``)."""


class CommandMonitor(Node):
    """Records the policy's ``command_stamped`` (arrival times, the states' stamps, send times, commands)
    and keeps its latest diagnostics."""

    def __init__(self, topic: str = "/invdyn_policy/command_stamped") -> None:
        super().__init__("command_monitor")
        self.recording = True
        self.received_ns: list[int] = []
        self.stamp_ns: list[int] = []
        self.sent_ns: list[int] = []
        self.commands: list[tuple[float, ...]] = []
        self.diagnostics: dict[str, str] = {}
        """The policy's last diagnostic values (key -> value)."""
        self.create_subscription(JointState, topic, self._on_command, 100)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("invdyn_policy"):
                self.diagnostics = {value.key: value.value for value in status.values}

    def _on_command(self, msg: JointState, info: MessageInfo) -> None:
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        if not self.recording or stamp_ns == 0:  # 0: computed before any joint state arrived
            return
        self.received_ns.append(info["received_timestamp"])
        self.stamp_ns.append(stamp_ns)
        self.sent_ns.append(info["source_timestamp"])
        self.commands.append(tuple(msg.effort))

    def clear(self) -> None:
        for values in (self.received_ns, self.stamp_ns, self.sent_ns, self.commands):
            values.clear()

    def stats(self, period_s: float) -> CommandStats:
        received, sent = np.array(self.received_ns), np.array(self.sent_ns)
        duration_s = (received[-1] - received[0]) * 1e-9
        stamps = np.array(self.stamp_ns)
        fresh = np.concatenate(([True], np.diff(stamps) > 0))
        intervals_s = np.diff(np.sort(sent)) * 1e-9
        return CommandStats(
            count=len(received),
            rate_hz=(len(received) - 1) / duration_s,
            latency_ms=percentiles_ms((received[fresh] - stamps[fresh]) * 1e-9),
            sent_latency_ms=percentiles_ms((sent[fresh] - stamps[fresh]) * 1e-9),
            late_ticks=int(np.sum(intervals_s > 2.0 * period_s)),
            jerk=rms_jerk(np.array(self.commands)),
        )


def wait_for(condition, timeout_s: float, poll_s: float = 0.05) -> bool:
    """Poll ``condition()`` until it is true or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return condition()


@dataclass
class ClosedLoop:
    """The running processes and the monitor of ``closed_loop``."""

    monitor: CommandMonitor
    sim: subprocess.Popen
    policy: subprocess.Popen
    domain_id: int
    log_dir: Path

    def finished(self) -> bool:
        """One of the nodes has exited."""
        return self.sim.poll() is not None or self.policy.poll() is not None

    def check(self) -> None:
        """Raise RuntimeError, with the end of its log, if a node exited with an error."""
        for name, process in (("arm_sim", self.sim), ("invdyn_policy", self.policy)):
            if process.poll() not in (None, 0):
                tail = (self.log_dir / f"{name}.log").read_text().strip().splitlines()[-3:]
                raise RuntimeError(f"{name} exited with code {process.returncode}: " + " | ".join(tail))


@contextmanager
def closed_loop(log_dir: Path, policy_overrides: dict[str, object], sim_overrides: dict[str, object],
                monitor_priority: int = 0) -> Iterator[ClosedLoop]:
    """arm_sim and invdyn_policy in a private domain with a ``CommandMonitor`` spinning here; all stopped on exit.

    ``monitor_priority`` > 0 runs this process's threads (the monitor's middleware threads, which stamp
    each command's arrival, among them) at that SCHED_FIFO priority, as a robot's controller manager runs."""
    domain = private_domain_id()
    use_domain(domain)
    env = ros_environment(domain)
    policy_line, sim_line = policy_command(policy_overrides), sim_command(sim_overrides)  # both found, or neither runs
    policy = start(policy_line, env, log_dir / "invdyn_policy.log")
    sim = start(sim_line, env, log_dir / "arm_sim.log")
    rclpy.init()
    monitor = CommandMonitor()
    executor = SingleThreadedExecutor()
    executor.add_node(monitor)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    apply_thread_priority(monitor, monitor_priority)
    try:
        yield ClosedLoop(monitor, sim, policy, domain, log_dir)
    finally:
        stop(sim)
        stop(policy)
        executor.shutdown()
        spinner.join()
        monitor.destroy_node()
        rclpy.try_shutdown()
