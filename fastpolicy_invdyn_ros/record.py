"""``record``: scripted-expert demonstrations recorded over ROS 2 into a rosbag2, the way a robot's are.

    ros2 run fastpolicy_invdyn_ros record --output data/demos_bag --goals 20 --seconds_per_goal 3

Three processes in a private ROS domain, as on a robot where an operator drives the arm while
``ros2 bag record`` runs:

* ``arm_sim`` (its console script with the package's YAML): the MuJoCo arm, ``/joint_states``
  after every 2 ms physics step, stamped with the system clock; it applies the commands.
* the expert (``python -m fastpolicy_invdyn_ros.record expert --ros-args -p name:=value ...``, the
  same as ``record expert ...``; a child process started with this Python): a node that keeps
  the newest ``/joint_states`` and, from a 100 Hz timer, sends the scripted expert's torque for it
  on ``/forward_command_controller/commands``. It goes through a seeded sequence of random
  reachable goals (a fraction of them near where the arm rests, as ``collect`` samples them),
  each for a fixed time, and publishes each on the goal topic when it starts (and every 0.5 s).
* the recorder (this process): subscribes the three topics and writes every message as it
  arrives, still serialized, into a rosbag2 (``rosbags`` writer, MCAP or sqlite3), timed by its
  receive time (the middleware's, in nanoseconds of the system clock, as ``ros2 bag record``
  does). The bag is written in a temporary directory beside ``--output`` and renamed into place
  at the end, so a failed or interrupted run leaves nothing at ``--output``.

At the end it prints what it recorded and how the trainer reads the bag (``bags.read_bag_episodes``).
The recording takes real time: 20 goals of 3 s take a minute, plus the start-up.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import cli
from .bags import (
    ARRAY_TYPE,
    DEFAULT_ACTION_TOPIC,
    DEFAULT_GOAL_TOPIC,
    DEFAULT_STATE_TOPIC,
    STATE_TYPE,
    STORAGE_FORMATS,
    TYPESTORE,
    BagError,
    BagReadConfig,
    read_bag_episodes,
)
from .closed_loop import private_domain_id, ros_environment, sim_command, start, stop, use_domain
from .sim.arm import ArmConfig, ArmSim
from .sim.expert import ExpertConfig, ScriptedExpert
from .sim.task import TaskConfig, goal_reached

MODULE = "fastpolicy_invdyn_ros.record"
EXPERT_NODE_NAME = "scripted_expert"
GOAL_REPUBLISH_PERIOD_S = 0.5
"""The expert sends the current goal again this often (a recorder or policy started late still gets it)."""
STARTUP_ALLOWANCE_S = 60.0
"""Time allowed for arm_sim and the expert to start and find each other on a busy machine."""
SETTLE_S = 0.3
"""How long the recorder keeps listening after the expert's last command (messages still in flight)."""
RECORDER_QUEUE_DEPTH = 1000
"""Subscription queue of the recorder: seconds of joint states, so a busy moment loses nothing."""


@dataclass
class RecordOptions:
    """Command-line options of ``record`` (each field becomes ``--<name>``)."""

    output: str = cli.option("data/demos_bag", "rosbag2 directory to create (must not exist)")
    goals: int = cli.option(20, "goals the expert reaches for, one after another")
    seconds_per_goal: float = cli.option(3.0, "seconds (wall clock) the expert spends on each goal")
    seed: int = cli.option(0, "seeds the arm's start, the goals, the expert's gains and its noise")
    format: str = cli.option("mcap", "storage of the bag", choices=tuple(STORAGE_FORMATS))
    domain_id: int | None = cli.option(None, "ROS domain of the run (unset: a random private one in 10-101)")
    goal_topic: str = cli.option(DEFAULT_GOAL_TOPIC, "where the expert publishes its goals")
    control_rate_hz: float = cli.option(100.0, "rate of the expert's commands")
    nearby_fraction: float = cli.option(0.3, "fraction of goals near where the arm rests (the previous goal)")
    nearby_offset: float = cli.option(0.25, "largest per-joint offset (rad) of those goals from the previous one")
    noise_scale: float = cli.option(ExpertConfig.noise_scale, "expert acceleration noise std in rad/s^2 (0: none)")
    log_dir: str = cli.option("", "where the node logs go ('': a temporary directory, removed at the end)")

    def __post_init__(self) -> None:
        if self.goals < 1:
            raise ValueError(f"goals must be >= 1, got {self.goals}")
        if not self.seconds_per_goal > 0 or not self.control_rate_hz > 0:
            raise ValueError("seconds_per_goal and control_rate_hz must be positive")
        if self.format not in STORAGE_FORMATS:
            raise ValueError(f"format must be one of {tuple(STORAGE_FORMATS)}, got {self.format!r}")
        if self.domain_id is not None and not 0 <= self.domain_id <= 232:
            raise ValueError(f"domain_id must be in 0-232, got {self.domain_id}")
        if not 0.0 <= self.nearby_fraction <= 1.0:
            raise ValueError(f"nearby_fraction must be in [0, 1], got {self.nearby_fraction}")
        if not self.goal_topic.startswith("/") or self.goal_topic in (DEFAULT_STATE_TOPIC, DEFAULT_ACTION_TOPIC):
            raise ValueError(f"goal_topic must be an absolute topic name of its own, got {self.goal_topic!r}")


def session_plan(sim: ArmSim, seed: int, num_goals: int, nearby_fraction: float, nearby_offset: float,
                 margin: float = TaskConfig.goal_margin) -> tuple[np.ndarray, list[np.ndarray]]:
    """The arm's rest start and the goals, a deterministic function of the seed.

    Goals are random reachable configurations (``ArmSim.sample_configuration``); a
    ``nearby_fraction`` of them lie within ``nearby_offset`` rad per joint of where the arm rests
    when they start (the start, or the previous goal), as ``sim.task.sample_nearby_task`` makes them.
    """
    rng = np.random.default_rng([seed, 0])
    start_q = sim.sample_configuration(rng, margin)
    low, high = sim.position_limits.T
    goals, previous = [], start_q
    for _ in range(num_goals):
        if rng.random() < nearby_fraction:
            goal = np.clip(previous + rng.uniform(-nearby_offset, nearby_offset, size=previous.shape),
                           low + margin, high - margin)
        else:
            goal = sim.sample_configuration(rng, margin)
        goals.append(goal)
        previous = goal
    return start_q, goals


# ---------------------------------------------------------------------------------------------
# The expert node (a child process: ``record expert --ros-args ...``)
# ---------------------------------------------------------------------------------------------

def expert_main(args: list[str] | None = None) -> int:
    """Run the scripted expert node until its last goal is over (or SIGINT)."""
    from rclpy.executors import SingleThreadedExecutor

    from .ros_common import init, run_node

    init(args)
    return run_node(EXPERT_NODE_NAME, _make_expert_node, (ValueError,), lambda _: SingleThreadedExecutor(),
                    lambda node: node.write_report(), until=lambda node: node.done)


def _make_expert_node():
    """The ``ExpertNode`` (defined here so that the recorder's own imports stay light)."""
    from rclpy.node import Node
    from rclpy.serialization import deserialize_message
    from rclpy.task import Future
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    from .ros_common import describe

    class ExpertNode(Node):
        """The scripted expert as a teleoperator: newest joint state in, a torque command out at a fixed rate."""

        def __init__(self) -> None:
            super().__init__(EXPERT_NODE_NAME)
            p = self._declare
            seed = p("seed", 0, "Seeds the start (for the nearby goals), the goals, the gains and the noise")
            num_goals = p("num_goals", 20, "Goals to go through, one after another")
            self.seconds_per_goal = p("seconds_per_goal", 3.0, "Seconds (node clock) spent on each goal")
            rate_hz = p("control_rate_hz", 100.0, "Command rate (Hz)")
            goal_topic = p("goal_topic", DEFAULT_GOAL_TOPIC, "Where goals are published")
            command_topic = p("command_topic", DEFAULT_ACTION_TOPIC, "Where commands are published")
            state_topic = p("state_topic", DEFAULT_STATE_TOPIC, "sensor_msgs/JointState input")
            nearby_fraction = p("nearby_fraction", 0.3, "Fraction of goals near the previous one")
            nearby_offset = p("nearby_offset", 0.25, "Largest per-joint offset (rad) of those goals")
            noise_scale = p("noise_scale", ExpertConfig.noise_scale, "Expert acceleration noise std (rad/s^2)")
            self.command_subscribers = p("command_subscribers", 1, "Wait for this many command subscribers")
            self.goal_subscribers = p("goal_subscribers", 0, "Wait for this many goal subscribers")
            self.report_path = p("report_path", "", "JSON file of the per-goal outcomes ('': none)")
            if num_goals < 1 or not self.seconds_per_goal > 0 or not rate_hz > 0:
                raise ValueError("num_goals, seconds_per_goal and control_rate_hz must be positive")

            self.sim = ArmSim(ArmConfig(control_dt=_control_dt(rate_hz)))
            self.task = TaskConfig()
            _, self.goals = session_plan(self.sim, seed, num_goals, nearby_fraction, nearby_offset)
            self.expert = ScriptedExpert(self.sim, ExpertConfig(noise_scale=noise_scale),
                                         np.random.default_rng([seed, 1]))
            self.joint_names = list(self.sim.joint_names)
            self.torque_limit = np.asarray(self.sim.torque_limit)
            self.state: np.ndarray | None = None
            self._index: dict[tuple[str, ...], np.ndarray | None] = {}
            self.goal_index = -1  # -1: not started
            self.goal_started_ns = 0
            self.outcomes: list[dict] = []
            self.ticks = 0
            self.done = Future()

            self._command_pub = self.create_publisher(Float64MultiArray, command_topic, 10)
            self._goal_pub = self.create_publisher(Float64MultiArray, goal_topic, 10)
            # Raw: a state costs only its bytes here; the newest is deserialized when a command is due.
            self._state_bytes: bytes | None = None
            self.create_subscription(JointState, state_topic, self._on_state_bytes, 10, raw=True)
            self._state_type = JointState
            self._timer = self.create_timer(1.0 / rate_hz, self._tick)
            self.create_timer(GOAL_REPUBLISH_PERIOD_S, self._publish_goal)
            self._message = Float64MultiArray

        def _declare(self, name: str, default: object, description: str) -> object:
            return self.declare_parameter(name, default, describe(description, read_only=True)).value

        def _on_state_bytes(self, data: bytes) -> None:
            self._state_bytes = data

        def _update_state(self) -> None:
            """``self.state`` from the newest joint state message ([q, qd] in the arm's joint order)."""
            data, self._state_bytes = self._state_bytes, None
            if data is None:
                return
            msg = deserialize_message(data, self._state_type)
            names = tuple(msg.name)
            if names not in self._index:
                where = {name: i for i, name in enumerate(names)}
                found = all(name in where for name in self.joint_names)
                self._index[names] = np.array([where[name] for name in self.joint_names]) if found else None
            index = self._index[names]
            if index is None or len(msg.position) != len(names) or len(msg.velocity) != len(names):
                return
            state = np.concatenate((np.asarray(msg.position)[index], np.asarray(msg.velocity)[index]))
            if np.all(np.isfinite(state)):
                self.state = state

        def _ready(self) -> bool:
            return (self.state is not None
                    and self._command_pub.get_subscription_count() >= self.command_subscribers
                    and self._goal_pub.get_subscription_count() >= self.goal_subscribers)

        def _tick(self) -> None:
            if self.done.done():
                return
            now_ns = self.get_clock().now().nanoseconds
            self._update_state()
            if self.goal_index < 0:
                if not self._ready():
                    return
                self.get_logger().info(f"starting: {len(self.goals)} goals of {self.seconds_per_goal:g} s")
                self._next_goal(now_ns)
            elif now_ns - self.goal_started_ns >= self.seconds_per_goal * 1e9:
                self._finish_goal()
                if self.goal_index + 1 == len(self.goals):
                    self._timer.cancel()
                    self.done.set_result(True)
                    return
                self._next_goal(now_ns)
            goal = self.goals[self.goal_index]
            command = np.clip(self.expert(self.state, goal), -self.torque_limit, self.torque_limit)
            self._command_pub.publish(self._message(data=command.tolist()))
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
                self._goal_pub.publish(self._message(data=self.goals[self.goal_index].tolist()))

        def write_report(self) -> None:
            if self.report_path:
                Path(self.report_path).write_text(json.dumps(
                    {"goals": self.outcomes, "commands": self.ticks, "completed": self.done.done()}, indent=2))

    return ExpertNode()


def _control_dt(rate_hz: float) -> float:
    """The expert's control period rounded to whole MuJoCo steps (``ArmSim`` needs that; the noise uses it)."""
    timestep = ArmSim().model.opt.timestep
    return max(1, round(1.0 / rate_hz / timestep)) * timestep


# ---------------------------------------------------------------------------------------------
# The recorder (this process)
# ---------------------------------------------------------------------------------------------

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


def _make_recorder(writer, topics: dict[str, str]):
    """A node writing every message of ``topics`` (topic -> message type) to ``writer``, serialized, as received.

    Spun in the thread that opened ``writer`` (sqlite3 connections stay in their thread).
    """
    from rclpy.node import Node
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    classes = {STATE_TYPE: JointState, ARRAY_TYPE: Float64MultiArray}

    class BagRecorder(Node):
        def __init__(self) -> None:
            super().__init__("bag_recorder")
            self.counts = {topic: TopicCount() for topic in topics}
            for topic, msgtype in topics.items():
                connection = writer.add_connection(topic, msgtype, typestore=TYPESTORE)
                self.create_subscription(classes[msgtype], topic,
                                         functools.partial(self._on_message, self.counts[topic], connection),
                                         QoSProfile(depth=RECORDER_QUEUE_DEPTH), raw=True)

        @staticmethod
        def _on_message(count: TopicCount, connection, data: bytes, info) -> None:
            # The middleware's receive time (system clock, like the arm's header stamps); this
            # process's clock only if the middleware gives none.
            received_ns = info["received_timestamp"] or time.time_ns()
            writer.write(connection, received_ns, data)
            count.messages += 1
            count.first_ns = count.first_ns or received_ns
            count.last_ns = received_ns

    return BagRecorder()


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def expert_command(options: RecordOptions, report_path: Path) -> list[str]:
    """The expert node's command line: this module under the same Python, with its parameters."""
    parameters = {
        "seed": options.seed,
        "num_goals": options.goals,
        "seconds_per_goal": float(options.seconds_per_goal),
        "control_rate_hz": float(options.control_rate_hz),
        "goal_topic": options.goal_topic,
        "nearby_fraction": float(options.nearby_fraction),
        "nearby_offset": float(options.nearby_offset),
        "noise_scale": float(options.noise_scale),
        "command_subscribers": 2,  # arm_sim and the recorder
        "goal_subscribers": 1,  # the recorder
        "report_path": str(report_path),
    }
    command = [sys.executable, "-m", MODULE, "expert", "--ros-args"]
    for name, value in parameters.items():
        command += ["-p", f"{name}:={value}"]
    return command


def record(options: RecordOptions) -> RecordResult:
    """Record a bag as the module docstring describes.

    Raises RuntimeError (a node failed or never started) or FileExistsError, leaving nothing at
    ``options.output``; the node logs of a failed run are kept and their directory named.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions
    from rosbags.rosbag2 import Writer

    output = Path(options.output)
    if output.exists():
        raise FileExistsError(f"{output} exists already; not overwriting it")
    started = time.perf_counter()
    start_q, _ = session_plan(ArmSim(), options.seed, options.goals, options.nearby_fraction, options.nearby_offset)
    # First: a missing console script fails before anything is created.
    sim_line = sim_command({"start_positions": [float(q) for q in start_q], "seed": options.seed})
    domain = private_domain_id() if options.domain_id is None else options.domain_id
    use_domain(domain)
    env = ros_environment(domain)
    topics = {DEFAULT_STATE_TOPIC: STATE_TYPE, DEFAULT_ACTION_TOPIC: ARRAY_TYPE, options.goal_topic: ARRAY_TYPE}
    output.parent.mkdir(parents=True, exist_ok=True)
    log_dir = Path(options.log_dir or tempfile.mkdtemp(prefix="record_logs."))
    log_dir.mkdir(parents=True, exist_ok=True)
    expert_report = log_dir / "expert_report.json"
    expert_report.unlink(missing_ok=True)
    expert_line = expert_command(options, expert_report)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    bag = staging / output.name  # the storage file inside is named after this directory
    processes: dict[str, subprocess.Popen] = {}
    succeeded = False
    # SIGINT and SIGTERM raise KeyboardInterrupt here (not rclpy's handlers): the finally below stops
    # the nodes and removes the unfinished bag.
    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    handlers = _interrupt_on_signals()
    try:
        writer = Writer(bag, version=Writer.VERSION_LATEST, storage_plugin=STORAGE_FORMATS[options.format])
        writer.open()
        try:
            recorder = _make_recorder(writer, topics)
            executor = SingleThreadedExecutor()
            executor.add_node(recorder)
            session = _Session(executor, processes, log_dir)
            print(f"record: ROS domain {domain}: arm_sim, the scripted expert ({options.goals} goals x "
                  f"{options.seconds_per_goal:g} s) and the recorder ...", flush=True)
            processes["arm_sim"] = start(sim_line, env, log_dir / "arm_sim.log")
            session.spin_until(lambda: recorder.counts[DEFAULT_STATE_TOPIC].messages > 0, STARTUP_ALLOWANCE_S,
                               "no joint states from arm_sim reached the recorder")
            processes["expert"] = start(expert_line, env, log_dir / "expert.log")
            session.spin_until(lambda: recorder.counts[DEFAULT_ACTION_TOPIC].messages > 0, STARTUP_ALLOWANCE_S,
                               "no commands from the expert reached the recorder")
            expert, limit_s = processes["expert"], 1.5 * options.goals * options.seconds_per_goal + 30.0
            session.spin_until(lambda: expert.poll() is not None, limit_s, "the expert did not finish",
                               expect_exit="expert")
            session.spin_for(SETTLE_S)  # the last messages in flight
            executor.shutdown()
            recorder.destroy_node()
        finally:
            writer.close()
        report = json.loads(expert_report.read_text()) if expert_report.exists() else {}
        if not report.get("completed"):
            raise RuntimeError(f"the expert did not complete its goals: {_log_tail(log_dir / 'expert.log')}")
        counts = recorder.counts
        silent = [topic for topic, count in counts.items() if count.messages == 0]
        if silent:
            raise RuntimeError(f"nothing was received on {', '.join(silent)}")
        for file in bag.iterdir():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        if output.exists():
            raise FileExistsError(f"{output} appeared during the recording; not overwriting it")
        os.rename(bag, output)
        succeeded = True
        return RecordResult(output, counts, report, time.perf_counter() - started)
    finally:
        for process in processes.values():
            stop(process)
        rclpy.try_shutdown()
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        shutil.rmtree(staging, ignore_errors=True)
        if not options.log_dir:
            if succeeded:
                shutil.rmtree(log_dir, ignore_errors=True)
            else:
                print(f"record: the node logs are in {log_dir}", file=sys.stderr)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _interrupt_on_signals() -> dict:
    """SIGINT and SIGTERM raise KeyboardInterrupt (in the main thread); returns the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, _raise_interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}


class _Session:
    """Spins the recorder in this thread while watching the node processes."""

    def __init__(self, executor, processes: dict[str, subprocess.Popen], log_dir: Path) -> None:
        self.executor, self.processes, self.log_dir = executor, processes, log_dir

    def check(self, expect_exit: str = "") -> None:
        """RuntimeError with the end of its log if a process has exited (``expect_exit`` may, with code 0)."""
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None and (name != expect_exit or code != 0):
                raise RuntimeError(f"{name} exited with code {code}: {_log_tail(self.log_dir / f'{name}.log')}")

    def spin_until(self, condition, timeout_s: float, message: str, expect_exit: str = "") -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            self.check(expect_exit)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{message} within {timeout_s:.0f} s; " + "; ".join(
                    f"{name}: {_log_tail(self.log_dir / f'{name}.log')}" for name in self.processes))
            self.executor.spin_once(timeout_sec=0.05)
        self.check(expect_exit)

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.02)


def describe_recording(result: RecordResult, options: RecordOptions) -> str:
    """What was recorded: messages and rates per topic, how the expert did, the size of the bag."""
    size = sum(file.stat().st_size for file in result.path.iterdir())
    lines = [f"recorded {result.path} ({options.format}, {size / 1e6:.1f} MB) in {result.seconds:.0f} s:"]
    for topic, count in result.counts.items():
        span = (count.last_ns - count.first_ns) * 1e-9
        lines.append(f"  {topic}: {count.messages} messages over {span:.1f} s ({count.rate_hz():.1f} Hz)")
    outcomes = result.expert_report.get("goals", [])
    if outcomes:
        errors = [outcome["final_error"] for outcome in outcomes]
        reached = sum(outcome["reached"] for outcome in outcomes)
        lines.append(f"  expert: {result.expert_report.get('commands', 0)} commands; at the end of their "
                     f"{options.seconds_per_goal:g} s {reached}/{len(outcomes)} goals reached (within "
                     f"{TaskConfig.position_tolerance} rad, slower than {TaskConfig.velocity_tolerance} rad/s), "
                     f"final error median {np.median(errors):.4f} rad, max {np.max(errors):.4f} rad")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["expert"]:  # the expert node, as ``record`` starts it
        return expert_main(argv[1:])
    parser = cli.build_parser(RecordOptions, __doc__)
    try:
        options = RecordOptions(**vars(parser.parse_args(argv)))
    except ValueError as error:
        parser.error(str(error))
    try:
        result = record(options)
    except (RuntimeError, FileExistsError, OSError) as error:
        print(f"record: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("record: interrupted; nothing written", file=sys.stderr)
        return 130
    print(describe_recording(result, options))
    try:
        _, report = read_bag_episodes([result.path], BagReadConfig(goal_topic=options.goal_topic))
    except BagError as error:
        print(f"record: warning: the trainer cannot use this bag: {error}", file=sys.stderr)
        return 1
    print("as the trainer reads it:")
    print(report)
    print(f"train from it: trainer --bag {result.path} --goal_topic {options.goal_topic} --model_type enhanced")
    return 0


if __name__ == "__main__":
    sys.exit(main())
