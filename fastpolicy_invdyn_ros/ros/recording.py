"""Scripted-expert demonstrations recorded over ROS 2 into a rosbag2, the way a robot's are.

Three processes in a private ROS domain, as on a robot where an operator drives the arm while
``ros2 bag record`` runs:

* ``arm_sim`` (its console script with the package's YAML): the MuJoCo arm, ``/joint_states``
  after every 2 ms physics step, stamped with the system clock; it applies the commands.
* the scripted expert (``ros.expert_node``, a child process under this Python): the newest joint
  state in, the expert's torque out at 100 Hz, a seeded sequence of goals published as it goes.
* the recorder (``BagRecorder``, in this process): subscribes the three topics and writes every
  message as it arrives, still serialized, into a rosbag2 (``rosbags`` writer, MCAP or sqlite3),
  timed by the middleware's receive time, as ``ros2 bag record`` does.

The bag appears at its path only when the recording is complete (``core.files.atomic_directory``).
SIGINT or SIGTERM (Ctrl-C) end the recording early, as they end ``ros2 bag record``: the nodes
stop and what was recorded so far is kept.
"""
from __future__ import annotations

import functools
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.signals import SignalHandlerOptions
from rosbags.rosbag2 import Writer
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from ..core.bags import (ARRAY_TYPE, DEFAULT_ACTION_TOPIC, DEFAULT_GOAL_TOPIC, DEFAULT_STATE_TOPIC, STATE_TYPE,
                         STORAGE_FORMATS, TYPESTORE)
from ..core.files import atomic_directory
from ..core.settings import check, setting
from ..core.signals import StopRequest
from ..sim.arm import ArmSim
from ..sim.expert import ExpertConfig
from ..sim.goals import session_goals
from .processes import log_tail, private_domain_id, ros_environment, sim_command, start, stop_process, use_domain

STARTUP_ALLOWANCE_S = 60.0
"""Time allowed for arm_sim and the expert to start and find each other on a busy machine."""
SETTLE_S = 0.3
"""How long the recorder keeps listening after the expert's last command (messages still in flight)."""
RECORDER_QUEUE_DEPTH = 1000
"""Subscription queue of the recorder: seconds of joint states, so a busy moment loses nothing."""
MESSAGE_CLASSES = {STATE_TYPE: JointState, ARRAY_TYPE: Float64MultiArray}


@dataclass
class RecordConfig:
    """What to record: the ``record`` command line (each field is a ``--option``)."""

    output: str = "data/demos_bag"
    """rosbag2 directory to create (must not exist)."""
    goals: int = setting(20, low=1)
    """Goals the expert reaches for, one after another."""
    seconds_per_goal: float = setting(3.0, low=0.01)
    """Seconds (wall clock) the expert spends on each goal."""
    seed: int = 0
    """Seeds the arm's start, the goals, the expert's gains and its noise."""
    format: str = setting("mcap", choices=tuple(STORAGE_FORMATS))
    """Storage of the bag."""
    domain_id: int | None = setting(None, low=0, high=232)
    """ROS domain of the run (unset: a random private one in 10-101)."""
    goal_topic: str = DEFAULT_GOAL_TOPIC
    """Where the expert publishes its goals."""
    control_rate_hz: float = setting(100.0, low=1.0, high=1000.0)
    """Rate of the expert's commands."""
    nearby_fraction: float = setting(0.3, low=0.0, high=1.0)
    """Fraction of goals near where the arm rests (the previous goal)."""
    nearby_offset: float = setting(0.25, low=0.0)
    """Largest per-joint offset (rad) of those goals from the previous one."""
    noise_scale: float = setting(ExpertConfig.noise_scale, low=0.0)
    """Expert acceleration noise std in rad/s^2 (0: none)."""
    log_dir: str = ""
    """Where the node logs go ('': a temporary directory, removed after a successful run)."""

    def __post_init__(self) -> None:
        check(self)
        if not self.goal_topic.startswith("/") or self.goal_topic in (DEFAULT_STATE_TOPIC, DEFAULT_ACTION_TOPIC):
            raise ValueError(f"goal_topic must be an absolute topic name of its own, got {self.goal_topic!r}")


@dataclass
class TopicCount:
    """What the recorder received on one topic."""

    messages: int = 0
    first_ns: int = 0
    last_ns: int = 0

    def rate_hz(self) -> float:
        return (self.messages - 1) / ((self.last_ns - self.first_ns) * 1e-9) if self.messages > 1 else 0.0


@dataclass
class RecordResult:
    """The bag written and what went into it."""

    path: Path
    counts: dict[str, TopicCount] = field(default_factory=dict)
    expert_report: dict = field(default_factory=dict)
    seconds: float = 0.0
    """Wall-clock time of the whole run."""
    interrupted: bool = False
    """A stop signal ended the recording before the expert's last goal."""


class BagRecorder(Node):
    """Writes every message of ``topics`` (topic -> message type) to ``writer``, serialized, as received.

    Spun in the thread that opened ``writer`` (sqlite3 connections stay in their thread).
    """

    def __init__(self, writer: Writer, topics: dict[str, str]) -> None:
        super().__init__("bag_recorder")
        self.writer = writer
        self.counts = {topic: TopicCount() for topic in topics}
        for topic, msgtype in topics.items():
            connection = writer.add_connection(topic, msgtype, typestore=TYPESTORE)
            self.create_subscription(MESSAGE_CLASSES[msgtype], topic,
                                     functools.partial(self._on_message, self.counts[topic], connection),
                                     QoSProfile(depth=RECORDER_QUEUE_DEPTH), raw=True)

    def _on_message(self, count: TopicCount, connection: Any, data: bytes, info: Any) -> None:
        # The middleware's receive time (system clock, like the arm's header stamps); this
        # process's clock only if the middleware gives none.
        received_ns = info["received_timestamp"] or time.time_ns()
        self.writer.write(connection, received_ns, data)
        count.messages += 1
        count.first_ns = count.first_ns or received_ns
        count.last_ns = received_ns


def expert_command(config: RecordConfig, report_path: Path) -> list[str]:
    """The expert node's command line: its module under this Python, with its parameters."""
    parameters = {
        "seed": config.seed,
        "num_goals": config.goals,
        "seconds_per_goal": float(config.seconds_per_goal),
        "control_rate_hz": float(config.control_rate_hz),
        "goal_topic": config.goal_topic,
        "nearby_fraction": float(config.nearby_fraction),
        "nearby_offset": float(config.nearby_offset),
        "noise_scale": float(config.noise_scale),
        "command_subscribers": 2,  # arm_sim and the recorder
        "goal_subscribers": 1,  # the recorder
        "report_path": str(report_path),
    }
    command = [sys.executable, "-m", "fastpolicy_invdyn_ros.ros.expert_node", "--ros-args"]
    for name, value in parameters.items():
        command += ["-p", f"{name}:={value}"]
    return command


class _Session:
    """Spins the recorder in this thread while watching the node processes and the stop request."""

    def __init__(self, executor: SingleThreadedExecutor, processes: dict[str, Popen], log_dir: Path,
                 stop: StopRequest) -> None:
        self.executor, self.processes, self.log_dir, self.stop = executor, processes, log_dir, stop

    def check(self, expect_exit: str = "") -> None:
        """RuntimeError with the end of its log if a process has exited (``expect_exit`` may, with code 0)."""
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None and (name != expect_exit or code != 0):
                raise RuntimeError(f"{name} exited with code {code}: {log_tail(self.log_dir / f'{name}.log')}")

    def spin_until(self, condition, timeout_s: float, message: str, expect_exit: str = "") -> None:
        """Spin until ``condition()``, a stop request or a timeout (RuntimeError)."""
        deadline = time.monotonic() + timeout_s
        while not condition() and not self.stop.requested:
            self.check(expect_exit)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{message} within {timeout_s:.0f} s; " + "; ".join(
                    f"{name}: {log_tail(self.log_dir / f'{name}.log')}" for name in self.processes))
            self.executor.spin_once(timeout_sec=0.05)
        if not self.stop.requested:
            self.check(expect_exit)

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.02)


def record(config: RecordConfig, stop: StopRequest | None = None) -> RecordResult:
    """Record a bag as the module docstring describes; ``stop`` (a signal) ends the recording early.

    Raises RuntimeError (a node failed or never started, nothing recorded) or FileExistsError, leaving
    nothing at ``config.output``; the node logs of a failed run are kept and their directory named.
    """
    output = Path(config.output)
    if output.exists():
        raise FileExistsError(f"{output} exists already; not overwriting it")
    stop = stop or StopRequest()
    started = time.perf_counter()
    start_q, _ = session_goals(ArmSim(), config.seed, config.goals, config.nearby_fraction, config.nearby_offset)
    # First: a missing console script fails before anything is created.
    sim_line = sim_command({"start_positions": [float(q) for q in start_q], "seed": config.seed})
    domain = private_domain_id() if config.domain_id is None else config.domain_id
    use_domain(domain)
    env = ros_environment(domain)
    topics = {DEFAULT_STATE_TOPIC: STATE_TYPE, DEFAULT_ACTION_TOPIC: ARRAY_TYPE, config.goal_topic: ARRAY_TYPE}
    log_dir = Path(config.log_dir or tempfile.mkdtemp(prefix="record_logs."))
    log_dir.mkdir(parents=True, exist_ok=True)
    expert_report = log_dir / "expert_report.json"
    expert_report.unlink(missing_ok=True)
    processes: dict[str, Popen] = {}
    succeeded = False
    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    try:
        with atomic_directory(output) as bag:
            with Writer(bag, version=Writer.VERSION_LATEST, storage_plugin=STORAGE_FORMATS[config.format]) as writer:
                recorder = BagRecorder(writer, topics)
                executor = SingleThreadedExecutor()
                executor.add_node(recorder)
                session = _Session(executor, processes, log_dir, stop)
                print(f"record: ROS domain {domain}: arm_sim, the scripted expert ({config.goals} goals x "
                      f"{config.seconds_per_goal:g} s) and the recorder ...", flush=True)
                processes["arm_sim"] = start(sim_line, env, log_dir / "arm_sim.log")
                session.spin_until(lambda: recorder.counts[DEFAULT_STATE_TOPIC].messages > 0, STARTUP_ALLOWANCE_S,
                                   "no joint states from arm_sim reached the recorder")
                processes["expert"] = start(expert_command(config, expert_report), env, log_dir / "expert.log")
                session.spin_until(lambda: recorder.counts[DEFAULT_ACTION_TOPIC].messages > 0,
                                   STARTUP_ALLOWANCE_S, "no commands from the expert reached the recorder")
                expert, limit_s = processes["expert"], 1.5 * config.goals * config.seconds_per_goal + 30.0
                session.spin_until(lambda: expert.poll() is not None, limit_s, "the expert did not finish",
                                   expect_exit="expert")
                for process in processes.values():  # the expert writes its report as it stops
                    stop_process(process)
                session.spin_for(SETTLE_S)  # the last messages in flight
                executor.shutdown()
                recorder.destroy_node()
            report = json.loads(expert_report.read_text()) if expert_report.exists() else {}
            if not report.get("completed") and not stop.requested:
                raise RuntimeError(f"the expert did not complete its goals: {log_tail(log_dir / 'expert.log')}")
            silent = [topic for topic, count in recorder.counts.items() if count.messages == 0]
            if silent:
                when = "before the recording was interrupted" if stop.requested else "in the recording"
                raise RuntimeError(f"nothing was received on {', '.join(silent)} {when}")
        succeeded = True
        return RecordResult(output, recorder.counts, report, time.perf_counter() - started, stop.requested)
    finally:
        for process in processes.values():
            stop_process(process)
        rclpy.try_shutdown()
        if not config.log_dir:
            if succeeded:
                shutil.rmtree(log_dir, ignore_errors=True)
            else:
                print(f"record: the node logs are in {log_dir}", file=sys.stderr)
