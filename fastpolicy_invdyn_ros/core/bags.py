"""rosbag2 demonstrations: recorded joint states and commands in, ``Episodes`` out, and back.

Bags are read and written with ``rosbags`` (MCAP and sqlite3, no ROS install needed); this
module imports no ROS package.

How ``read_bag_episodes`` aligns a recording (each bag on its own):

1. Times. ``sensor_msgs/JointState`` is timed by its header stamp (by the bag receive time when
   the stamp is zero, or always with ``state_time="receive"``). ``Float64MultiArray`` commands
   and goals have no header and are timed by the bag receive time, so header stamps on another
   clock (median offset from the receive times above ``gap_threshold``) are refused. Each stream
   keeps its finite messages whose times strictly increase; the others are dropped and counted.
2. Pairing. A command at t_c is paired with the newest state at or before t_c and with the
   newest goal at or before t_c. A command that sees the same state as the command before it is
   dropped, so each state is paired with one command: when states arrive more slowly than
   commands, with the first command after it.
3. Control period: ``control_dt``, or else the median interval between paired commands (the
   command period, or the state period when states are the slower stream).
4. Episodes on the command timeline. Row t is (state at command t, command t, goal at command t);
   a command whose state is older than one control period is dropped.
   Consecutive paired commands stay in one episode while the interval between the commands and
   the interval between their states are both one control period (within ``timing_tolerance``).
   Then states[t + 1], the state at command t + 1, is the newest state at or before
   t_c + control_dt up to the command timing jitter: the state one control period after the
   command, which the transition (states[t], actions[t]) -> states[t + 1] needs. Comparing the
   intervals rather than looking up t_c + control_dt exactly keeps jittery real recordings
   whole, where the exact lookup flips between neighbouring state messages.
   An episode ends at a gap longer than ``gap_threshold``, at a goal change, and at any other
   break of that rhythm (a lost command, a control period without a new state). The last row of
   an episode keeps its command although the state after it may be missing: like the last
   action of an NPZ episode it is never used as a transition. A command alone between two
   breaks has no transition and is dropped.

Joints are picked by name from every JointState, whatever order it uses. Commands and goals
carry no names: their entries must be in ``joint_names`` order (the forward_command_controller's
``joints`` parameter), so give ``joint_names`` explicitly when the state publisher orders its
joints differently.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from .data import Episodes
from .errors import InputError
from .files import atomic_directory
from .joints import JointIndex
from .settings import check, setting

DEFAULT_STATE_TOPIC = "/joint_states"
DEFAULT_ACTION_TOPIC = "/forward_command_controller/commands"
DEFAULT_GOAL_TOPIC = "/invdyn_policy/goal"
"""Where ``write_bag`` puts goals by default: the policy node's ``~/goal`` input."""
STATE_TYPE = "sensor_msgs/msg/JointState"
ARRAY_TYPE = "std_msgs/msg/Float64MultiArray"
STORAGE_FORMATS = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
STATE_TIMES = ("header", "receive")

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
"""Message definitions for writing, and for reading bags that embed none."""

EPISODE_GAP_S = 1.0
"""Silence ``write_bag`` leaves between episodes, well above the default ``gap_threshold``."""
_EPOCH_NS = 1_700_000_000 * 10**9
"""Time of the first message ``write_bag`` writes (a plausible wall-clock time, fixed for reproducibility)."""


class BagError(InputError):
    """A bag that cannot be turned into demonstrations; the message names the bag and the problem."""


@dataclass
class BagReadConfig:
    """Which topics and joints to read from a bag, and how to align them."""

    state_topic: str = DEFAULT_STATE_TOPIC
    """sensor_msgs/msg/JointState topic with the joint positions and velocities."""
    action_topic: str = DEFAULT_ACTION_TOPIC
    """std_msgs/msg/Float64MultiArray topic with the commands, one entry per joint in joint_names order."""
    goal_topic: str | None = None
    """Optional std_msgs/msg/Float64MultiArray goal topic; unset: the episodes get no goal (G = 0)."""
    joint_names: list[str] = setting([])
    """Joints to read, in this order; empty: the names of the first state message, in its order."""
    control_dt: float | None = setting(None, low=1e-6)
    """Control period in seconds; unset: the median interval between paired commands."""
    gap_threshold: float = setting(0.2, low=1e-6)
    """A gap in commands or states longer than this (seconds) ends an episode."""
    max_nan_fraction: float = setting(0.01, low=0.0, high=0.999)
    """Messages with NaN/inf are dropped and counted; a topic with a larger fraction of them is refused."""
    state_time: str = setting("header", choices=STATE_TIMES)
    """How states are timed: header stamps (zero stamps fall back to the receive time) or receive time."""
    timing_tolerance: float = setting(0.3, low=0.01, high=0.49)
    """Largest deviation of a command or state interval from control_dt (as a fraction of it) inside an episode."""

    def __post_init__(self) -> None:
        check(self)
        self.joint_names = [str(name) for name in self.joint_names]
        if len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"joint_names has duplicates: {self.joint_names}")
        if not self.state_topic or not self.action_topic or self.goal_topic == "":
            raise ValueError("topic names must not be empty")


@dataclass
class BagReadReport:
    """What ``read_bag_episodes`` read, used, dropped and why."""

    bags: list[str] = field(default_factory=list)
    """The bags read, in order."""
    messages: Counter[str] = field(default_factory=Counter)
    """Messages read per topic, before anything was dropped."""
    dropped: Counter[str] = field(default_factory=Counter)
    """Messages and commands left out, by reason."""
    splits: Counter[str] = field(default_factory=Counter)
    """Episode boundaries found inside bags, by reason."""
    joint_names: list[str] = field(default_factory=list)
    """The joints read, in the column order of the episodes."""
    control_dt: float = 0.0
    """Control period of the episodes, in seconds."""
    control_dt_inferred: bool = False
    """Whether control_dt was inferred from the commands rather than configured."""
    commands_used: int = 0
    """Commands that became episode rows."""
    episodes: int = 0
    """Episodes made."""

    def __str__(self) -> str:
        source = "median interval between paired commands" if self.control_dt_inferred else "configured"
        lines = [
            f"read {len(self.bags)} bag(s): {', '.join(self.bags)}",
            "  messages: " + ", ".join(f"{topic} {count}" for topic, count in sorted(self.messages.items())),
            f"  joints: {', '.join(self.joint_names)}; control period {self.control_dt:.6g} s ({source})",
            f"  used {self.commands_used} commands in {self.episodes} episodes",
            "  episode breaks: " + _counts(self.splits),
            "  dropped: " + _counts(self.dropped),
        ]
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return "; ".join(f"{count} {reason}" for reason, count in sorted(counter.items()) if count) or "none"


@dataclass
class _Stream:
    """One topic's usable messages: strictly increasing times and one row of values each."""

    times: np.ndarray
    """(K,) int64 nanoseconds."""
    values: np.ndarray
    """(K, D) float64."""


class _StreamBuilder:
    """Collects one topic's messages, dropping and counting the unusable ones."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.count = 0
        self.non_finite = 0
        self.dropped: Counter[str] = Counter()
        self._times: list[int] = []
        self._rows: list[np.ndarray] = []

    def add(self, time_ns: int, row: np.ndarray | None, reason: str | None = None) -> None:
        self.count += 1
        if row is None:
            self.dropped[f"{self.topic}: {reason}"] += 1
        elif not np.all(np.isfinite(row)):
            self.non_finite += 1
            self.dropped[f"{self.topic}: NaN/inf"] += 1
        else:
            self._times.append(time_ns)
            self._rows.append(row)

    def build(self, width: int) -> _Stream:
        times = np.array(self._times, dtype=np.int64)
        values = np.array(self._rows, dtype=np.float64).reshape(len(self._rows), width)
        # A time at or before an earlier one (a clock jump, a repeated stamp) cannot be ordered.
        increasing = np.ones(len(times), dtype=bool)
        increasing[1:] = times[1:] > np.maximum.accumulate(times)[:-1]
        self.dropped[f"{self.topic}: out-of-order or repeated time"] += int(np.sum(~increasing))
        return _Stream(times[increasing], values[increasing])


class _JointPicker:
    """Rows [q, qd] in ``joint_names`` order from JointState messages, whatever order they use."""

    def __init__(self, joint_names: list[str]) -> None:
        self.joint_names = joint_names
        self.names_seen: set[str] = set()
        self._index: JointIndex | None = JointIndex(joint_names) if joint_names else None

    def row(self, msg: object) -> tuple[np.ndarray | None, str | None]:
        names = msg.name
        if not names:
            return None, "names no joints"
        if self._index is None:
            self.joint_names = list(names)
            self._index = JointIndex(self.joint_names)
        layout = self._index.layout(names)
        self.names_seen.update(names)
        if layout.index is None:
            return None, layout.problem
        if len(msg.position) != len(names):
            return None, "position size differs from the names"
        if len(msg.velocity) == 0:
            return None, "no velocities (JointState.velocity is empty)"
        if len(msg.velocity) != len(names):
            return None, "velocity size differs from the names"
        return np.concatenate((msg.position[layout.index], msg.velocity[layout.index])), None


class _ArrayPicker:
    """Rows from Float64MultiArray messages, all as long as the first one."""

    def __init__(self) -> None:
        self.width: int | None = None

    def row(self, msg: object) -> tuple[np.ndarray | None, str | None]:
        data = np.asarray(msg.data, dtype=np.float64)
        if len(data) == 0:
            return None, "empty array"
        self.width = self.width or len(data)
        if len(data) != self.width:
            return None, f"size {len(data)} differs from the first message's {self.width}"
        return data, None


@dataclass
class _Recording:
    """One bag's usable streams."""

    path: Path
    states: _Stream
    commands: _Stream
    goals: _Stream | None


def read_bag_episodes(
    paths: list[str | Path], config: BagReadConfig | None = None
) -> tuple[Episodes, BagReadReport]:
    """Demonstration episodes from rosbag2 recordings (directories, .mcap or .db3 files).

    Each bag gives its own episodes; all must share the joints, command size and goal size. The
    first bag's first state message names the joints unless ``config.joint_names`` does.
    Raises BagError naming the bag and the problem when one cannot be used.
    """
    config = config or BagReadConfig()
    if not paths:
        raise BagError("no bag given")
    report = BagReadReport()
    joint_names = list(config.joint_names)
    recordings = []
    for path in map(Path, paths):
        recording, joint_names = _read_recording(path, config, joint_names, report)
        recordings.append(recording)
    paired = [_pair_commands(recording, report) for recording in recordings]
    if config.control_dt is None:
        control_dt = _infer_control_dt(recordings, paired, config.gap_threshold)
    else:
        control_dt = config.control_dt
    parts = [
        _episode_rows(recording, pairs, control_dt, config, report)
        for recording, pairs in zip(recordings, paired)
    ]
    episodes = _merge(recordings, parts, control_dt, joint_names)
    report.joint_names = joint_names
    report.control_dt = control_dt
    report.control_dt_inferred = config.control_dt is None
    report.commands_used = len(episodes.states)
    report.episodes = episodes.num_episodes
    return episodes, report


def _read_recording(
    path: Path, config: BagReadConfig, joint_names: list[str], report: BagReadReport
) -> tuple[_Recording, list[str]]:
    """The usable state, command and goal streams of one bag, and the joint names."""
    states = _StreamBuilder(config.state_topic)
    commands = _StreamBuilder(config.action_topic)
    goals = _StreamBuilder(config.goal_topic) if config.goal_topic else None
    joints, command_picker, goal_picker = _JointPicker(joint_names), _ArrayPicker(), _ArrayPicker()
    clock_offsets: list[int] = []
    for topic, receive_ns, msg in _bag_messages(path, config):
        if topic == config.state_topic:
            stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            if config.state_time == "header" and stamp_ns != 0:
                clock_offsets.append(receive_ns - stamp_ns)
                states.add(stamp_ns, *joints.row(msg))
            else:
                states.add(receive_ns, *joints.row(msg))
        elif topic == config.action_topic:
            commands.add(receive_ns, *command_picker.row(msg))
        elif goals is not None:
            goals.add(receive_ns, *goal_picker.row(msg))

    recording = _Recording(
        path,
        states.build(2 * len(joints.joint_names)),
        commands.build(command_picker.width or 0),
        goals.build(goal_picker.width or 0) if goals else None,
    )
    builders = [states, commands] + ([goals] if goals else [])
    for builder in builders:
        report.messages[builder.topic] += builder.count
        report.dropped.update(builder.dropped)
        if builder.count == 0:
            raise BagError(f"{path}: no messages on {builder.topic}")
        if builder.non_finite > config.max_nan_fraction * builder.count:
            raise BagError(
                f"{path}: {builder.non_finite} of {builder.count} messages on {builder.topic} hold NaN/inf "
                f"({builder.non_finite / builder.count:.1%} > max_nan_fraction {config.max_nan_fraction:.1%})"
            )
    if not joints.joint_names:
        raise BagError(f"{path}: the messages on {config.state_topic} name no joints; give joint_names")
    missing = [name for name in joints.joint_names if name not in joints.names_seen]
    if missing:
        raise BagError(
            f"{path}: joint(s) {missing} not in any message on {config.state_topic} "
            f"(its messages name {sorted(joints.names_seen)})"
        )
    # Commands are timed by receive time: state stamps on another clock cannot be aligned with them.
    if clock_offsets and abs(np.median(clock_offsets)) > config.gap_threshold * 1e9:
        raise BagError(
            f"{path}: header stamps on {config.state_topic} differ from the bag receive times by "
            f"{np.median(clock_offsets) / 1e9:.3f} s (median), so they are on another clock than the "
            f"commands; read with state_time='receive'"
        )
    for builder, stream in zip(builders, (recording.states, recording.commands, recording.goals)):
        if len(stream.times) == 0:
            raise BagError(
                f"{path}: none of the {builder.count} messages on {builder.topic} is usable "
                f"({_counts(builder.dropped)})"
            )
    report.bags.append(str(path))
    return recording, joints.joint_names


def _bag_messages(path: Path, config: BagReadConfig) -> Iterator[tuple[str, int, object]]:
    """(topic, receive time in ns, message) of the configured topics, in receive order.

    Whatever rosbags raises on a truncated or corrupt bag becomes a BagError naming it.
    """
    if not path.exists():
        raise BagError(f"{path}: no such bag")
    try:
        with AnyReader([path], default_typestore=TYPESTORE) as reader:
            if reader.message_count == 0:
                raise BagError(f"{path}: the bag is empty (no messages)")
            connections = _topic_connections(path, reader, config)
            for connection, receive_ns, raw in reader.messages(connections=connections):
                yield connection.topic, receive_ns, reader.deserialize(raw, connection.msgtype)
    except BagError:
        raise
    except Exception as error:  # rosbags, apsw, mcap and OS errors alike mean "unreadable bag"
        raise BagError(f"{path}: cannot read the bag ({type(error).__name__}: {error})") from error


def _topic_connections(path: Path, reader: AnyReader, config: BagReadConfig) -> list:
    """The connections of the configured topics, after checking they exist with the right types."""
    wanted = {config.state_topic: STATE_TYPE, config.action_topic: ARRAY_TYPE}
    if config.goal_topic:
        wanted[config.goal_topic] = ARRAY_TYPE
    present = {connection.topic: connection.msgtype for connection in reader.connections}
    for topic, msgtype in wanted.items():
        if topic not in present:
            listing = ", ".join(f"{name} [{kind}]" for name, kind in sorted(present.items()))
            raise BagError(f"{path}: no topic {topic}; the bag has: {listing}")
        wrong = {c.msgtype for c in reader.connections if c.topic == topic and c.msgtype != msgtype}
        if wrong:
            raise BagError(f"{path}: topic {topic} has type {', '.join(sorted(wrong))}, expected {msgtype}")
    return [connection for connection in reader.connections if connection.topic in wanted]


@dataclass
class _Pairs:
    """Paired commands of one recording: indices into its command, state and goal streams."""

    commands: np.ndarray
    states: np.ndarray
    goals: np.ndarray | None


def _pair_commands(recording: _Recording, report: BagReadReport) -> _Pairs:
    """Each command with the newest state and goal at or before it; see the module docstring."""
    command_times = recording.commands.times
    states = np.searchsorted(recording.states.times, command_times, side="right") - 1
    keep = states >= 0
    report.dropped["commands: before the first state"] += int(np.sum(~keep))
    goals = None
    if recording.goals is not None:
        goals = np.searchsorted(recording.goals.times, command_times, side="right") - 1
        report.dropped["commands: before the first goal"] += int(np.sum(keep & (goals < 0)))
        keep &= goals >= 0
    commands = np.flatnonzero(keep)
    new_state = np.ones(len(commands), dtype=bool)
    new_state[1:] = np.diff(states[commands]) > 0
    report.dropped["commands: same state as the previous command"] += int(np.sum(~new_state))
    commands = commands[new_state]
    return _Pairs(commands, states[commands], None if goals is None else goals[commands])


def _infer_control_dt(recordings: list[_Recording], paired: list[_Pairs], gap_threshold: float) -> float:
    """Median interval between consecutive paired commands, gaps left out."""
    intervals = np.concatenate(
        [np.diff(recording.commands.times[pairs.commands]) for recording, pairs in zip(recordings, paired)]
    )
    intervals = intervals[intervals <= gap_threshold * 1e9]
    if len(intervals) == 0:
        raise BagError(
            f"{', '.join(str(r.path) for r in recordings)}: cannot infer the control period: no two paired "
            f"commands within gap_threshold={gap_threshold} s of each other"
        )
    return float(np.median(intervals)) / 1e9


def _episode_rows(
    recording: _Recording, pairs: _Pairs, control_dt: float, config: BagReadConfig, report: BagReadReport
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(states, actions, goals) of each episode of one recording; see the module docstring."""
    period = control_dt * 1e9
    tolerance = config.timing_tolerance * period
    command_times = recording.commands.times[pairs.commands]
    state_times = recording.states.times[pairs.states]
    fresh = command_times - state_times <= period + tolerance
    report.dropped["commands: state older than one control period"] += int(np.sum(~fresh))
    command_times, state_times = command_times[fresh], state_times[fresh]
    rows = pairs.commands[fresh]
    states = recording.states.values[pairs.states[fresh]]
    goals = (
        np.zeros((len(rows), 0)) if pairs.goals is None else recording.goals.values[pairs.goals[fresh]]
    )

    command_steps, state_steps = np.diff(command_times), np.diff(state_times)
    gap = (command_steps > config.gap_threshold * 1e9) | (state_steps > config.gap_threshold * 1e9)
    goal_change = np.any(goals[1:] != goals[:-1], axis=1) & ~gap
    off_beat = (np.abs(command_steps - period) > tolerance) | (np.abs(state_steps - period) > tolerance)
    off_beat &= ~gap & ~goal_change
    report.splits["gap"] += int(np.sum(gap))
    report.splits["goal change"] += int(np.sum(goal_change))
    report.splits["timing break (lost command or no new state)"] += int(np.sum(off_beat))

    bounds = np.concatenate(([0], np.flatnonzero(gap | goal_change | off_beat) + 1, [len(rows)]))
    episodes = []
    for start, end in zip(bounds[:-1], bounds[1:]):
        if end - start < 2:
            report.dropped["commands: alone between episode breaks"] += int(end - start)
            continue
        episodes.append((states[start:end], recording.commands.values[rows[start:end]], goals[start:end]))
    if not episodes:
        raise BagError(
            f"{recording.path}: no usable (state, command) pairs; states span "
            f"{_span(recording.states.times)}, commands span {_span(recording.commands.times)} "
            f"(control period {control_dt:.6g} s). Dropped so far: {_counts(report.dropped)}"
        )
    return episodes


def _span(times: np.ndarray) -> str:
    return f"[{times[0] / 1e9:.3f}, {times[-1] / 1e9:.3f}] s"


def _merge(
    recordings: list[_Recording],
    parts: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]],
    control_dt: float,
    joint_names: list[str],
) -> Episodes:
    """One ``Episodes`` from every recording's episodes, after checking their sizes agree."""
    first = parts[0][0]
    for recording, episodes in zip(recordings, parts):
        _, actions, goals = episodes[0]
        if actions.shape[1] != first[1].shape[1] or goals.shape[1] != first[2].shape[1]:
            raise BagError(
                f"{recording.path}: commands/goals have {actions.shape[1]}/{goals.shape[1]} entries, "
                f"{recordings[0].path} has {first[1].shape[1]}/{first[2].shape[1]}"
            )
    if first[1].shape[1] != len(joint_names):
        raise BagError(f"the commands have {first[1].shape[1]} entries for the {len(joint_names)} joints "
                       f"{joint_names}: give joint_names (the commanded joints, in the commands' order)")
    episodes = [episode for part in parts for episode in part]
    return Episodes(
        states=np.concatenate([states for states, _, _ in episodes]),
        actions=np.concatenate([actions for _, actions, _ in episodes]),
        goals=np.concatenate([goals for _, _, goals in episodes]),
        episode_ends=np.cumsum([len(states) for states, _, _ in episodes]),
        dt=control_dt,
        joint_names=joint_names,
    )


def write_bag(
    path: str | Path,
    episodes: Episodes,
    format: str = "mcap",
    state_topic: str = DEFAULT_STATE_TOPIC,
    action_topic: str = DEFAULT_ACTION_TOPIC,
    goal_topic: str | None = DEFAULT_GOAL_TOPIC,
    state_rate_multiple: int = 1,
) -> Path:
    """Write ``episodes`` as a rosbag2 directory laid out like a recording of the robot.

    Row t of an episode becomes a JointState stamped t·dt after the episode start and a command
    received a quarter of a state period later (after the state it answers, as a policy's would
    be); goals go to ``goal_topic`` at each episode start and goal change (None: not written).
    Episodes are ``EPISODE_GAP_S`` apart. With ``state_rate_multiple`` m > 1, states are
    published m times per control period; the ones between rows are interpolated (``_between``;
    on the simulated arm within ~1e-5 rad and ~3e-3 rad/s of the true sub-step states). Reading
    the bag back with the same topics gives the same episodes (one whose goal changes comes back
    split at the change, as any recording would).

    The bag is written atomically (``files.atomic_directory``): a failure leaves nothing at ``path``,
    and an existing ``path`` is never overwritten.
    """
    if format not in STORAGE_FORMATS:
        raise ValueError(f"format must be one of {tuple(STORAGE_FORMATS)}, got {format!r}")
    if state_rate_multiple < 1:
        raise ValueError(f"state_rate_multiple must be >= 1, got {state_rate_multiple}")
    with atomic_directory(path) as bag:
        with Writer(bag, version=Writer.VERSION_LATEST, storage_plugin=STORAGE_FORMATS[format]) as writer:
            connections = {
                "state": writer.add_connection(state_topic, STATE_TYPE, typestore=TYPESTORE),
                "action": writer.add_connection(action_topic, ARRAY_TYPE, typestore=TYPESTORE),
            }
            if goal_topic and episodes.goal_dim > 0:
                connections["goal"] = writer.add_connection(goal_topic, ARRAY_TYPE, typestore=TYPESTORE)
            messages = _recorded_messages(episodes, state_rate_multiple, "goal" in connections)
            for kind, time_ns, message in messages:
                message_type = STATE_TYPE if kind == "state" else ARRAY_TYPE
                writer.write(connections[kind], time_ns, TYPESTORE.serialize_cdr(message, message_type))
    return Path(path)


def _recorded_messages(
    episodes: Episodes, state_rate_multiple: int, with_goals: bool
) -> Iterator[tuple[str, int, object]]:
    """(kind, time in ns, message) for every row of every episode, in time order."""
    period_ns = round(episodes.dt * 1e9)
    substep_ns = period_ns // state_rate_multiple
    latency_ns = substep_ns // 4
    num_joints = len(episodes.joint_names)
    start_ns = _EPOCH_NS
    for first, end in zip(episodes.episode_starts.tolist(), episodes.episode_ends.tolist()):
        for t in range(first, end):
            time_ns = start_ns + (t - first) * period_ns
            if with_goals and (t == first or np.any(episodes.goals[t] != episodes.goals[t - 1])):
                yield "goal", time_ns, _array_message(episodes.goals[t])
            yield "state", time_ns, _joint_state(time_ns, episodes.joint_names, episodes.states[t])
            yield "action", time_ns + latency_ns, _array_message(episodes.actions[t])
            if t + 1 < end:
                for j in range(1, state_rate_multiple):
                    fraction = j / state_rate_multiple
                    state = _between(episodes.states[t], episodes.states[t + 1], fraction, episodes.dt, num_joints)
                    sub_ns = time_ns + j * substep_ns
                    yield "state", sub_ns, _joint_state(sub_ns, episodes.joint_names, state)
        start_ns += (end - first) * period_ns + round(EPISODE_GAP_S * 1e9)


def _between(start: np.ndarray, end: np.ndarray, s: float, dt: float, num_joints: int) -> np.ndarray:
    """[q, qd] at fraction ``s`` of a control period of ``dt`` s from ``start`` to ``end``.

    q follows the cubic Hermite curve through both ends' q and qd; qd changes linearly, as it
    does under the constant acceleration of a command held for the period.
    """
    q0, v0 = start[:num_joints].astype(np.float64), start[num_joints:].astype(np.float64)
    q1, v1 = end[:num_joints].astype(np.float64), end[num_joints:].astype(np.float64)
    q = (
        (2 * s**3 - 3 * s**2 + 1) * q0
        + (s**3 - 2 * s**2 + s) * dt * v0
        + (3 * s**2 - 2 * s**3) * q1
        + (s**3 - s**2) * dt * v1
    )
    return np.concatenate((q, (1 - s) * v0 + s * v1))


def _joint_state(time_ns: int, joint_names: list[str], state: np.ndarray) -> object:
    types = TYPESTORE.types
    num_joints = len(joint_names)
    return types[STATE_TYPE](
        header=types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=time_ns // 10**9, nanosec=time_ns % 10**9),
            frame_id="",
        ),
        name=list(joint_names),
        position=np.asarray(state[:num_joints], dtype=np.float64),
        velocity=np.asarray(state[num_joints:], dtype=np.float64),
        effort=np.zeros(0),
    )


def _array_message(values: np.ndarray) -> object:
    types = TYPESTORE.types
    return types[ARRAY_TYPE](
        layout=types["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0),
        data=np.asarray(values, dtype=np.float64),
    )
