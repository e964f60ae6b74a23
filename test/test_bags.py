"""rosbag2 demonstrations: real MCAP/sqlite3 bags of simulated-arm data, read back into episodes."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from fastpolicy_invdyn_ros.tools import bag_export
from fastpolicy_invdyn_ros.core.bags import (
    ARRAY_TYPE,
    DEFAULT_ACTION_TOPIC,
    DEFAULT_GOAL_TOPIC,
    DEFAULT_STATE_TOPIC,
    STATE_TYPE,
    TYPESTORE,
    BagError,
    BagReadConfig,
    read_bag_episodes,
    write_bag,
)
from fastpolicy_invdyn_ros.core.data import Episodes, load_episodes, save_episodes
from fastpolicy_invdyn_ros.sim import ArmConfig, ArmSim, CollectConfig, collect

WITH_GOALS = BagReadConfig(goal_topic=DEFAULT_GOAL_TOPIC)
START_NS = 1_750_000_000 * 10**9
LATENCY_NS = 2_000_000
"""A policy's command arrives this long after the state it answers."""

Message = tuple[str, str, int, object]
"""(topic, type, bag receive time in ns, message)."""


@pytest.fixture(scope="module")
def demos() -> Episodes:
    """6 scripted-expert episodes of 4 s at 100 Hz (2400 steps)."""
    return collect(CollectConfig(episodes=6, seed=1))


@pytest.fixture(scope="module")
def one_episode(demos: Episodes) -> Episodes:
    return demos.select([0])


def assert_same(actual: Episodes, expected: Episodes) -> None:
    assert actual.joint_names == expected.joint_names
    assert actual.dt == pytest.approx(expected.dt)
    np.testing.assert_array_equal(actual.episode_ends, expected.episode_ends)
    np.testing.assert_allclose(actual.states, expected.states, atol=1e-6)
    np.testing.assert_allclose(actual.actions, expected.actions, atol=1e-6)
    np.testing.assert_allclose(actual.goals, expected.goals, atol=1e-6)


def joint_state(stamp_ns: int, names: list[str], q: np.ndarray, qd: np.ndarray) -> object:
    types = TYPESTORE.types
    return types[STATE_TYPE](
        header=types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=""
        ),
        name=names,
        position=np.asarray(q, dtype=np.float64),
        velocity=np.asarray(qd, dtype=np.float64),
        effort=np.zeros(0),
    )


def array(values: np.ndarray) -> object:
    types = TYPESTORE.types
    layout = types["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
    return types[ARRAY_TYPE](layout=layout, data=np.asarray(values, dtype=np.float64))


def write_by_hand(path: Path, messages: list[Message], storage: StoragePlugin = StoragePlugin.MCAP) -> Path:
    """A bag written directly with rosbags' Writer, messages in receive-time order."""
    with Writer(path, version=9, storage_plugin=storage) as writer:
        connections = {}
        for topic, msgtype, time_ns, message in sorted(messages, key=lambda m: m[2]):
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=TYPESTORE)
            writer.write(connections[topic], time_ns, TYPESTORE.serialize_cdr(message, msgtype))
    return path


def recording(
    episodes: Episodes, rng: np.random.Generator | None = None, zero_stamps: bool = False
) -> list[Message]:
    """``episodes`` as a robot records them: a JointState per step, its command LATENCY_NS later,
    the goal at each episode start, 1 s between episodes.

    With ``rng``, each JointState lists the joints plus a gripper joint in a random order.
    With ``zero_stamps``, header stamps are zero (only the receive time tells the time).
    """
    dt_ns = round(episodes.dt * 1e9)
    num_joints = len(episodes.joint_names)
    messages = []
    start_ns = START_NS
    for first, end in zip(episodes.episode_starts.tolist(), episodes.episode_ends.tolist()):
        messages.append((DEFAULT_GOAL_TOPIC, ARRAY_TYPE, start_ns, array(episodes.goals[first])))
        for t in range(first, end):
            time_ns = start_ns + (t - first) * dt_ns
            names = episodes.joint_names + ["gripper"]
            q = np.append(episodes.states[t, :num_joints], 0.02)
            qd = np.append(episodes.states[t, num_joints:], 0.0)
            order = rng.permutation(len(names)) if rng is not None else np.arange(num_joints)
            stamp_ns = 0 if zero_stamps else time_ns
            state = joint_state(stamp_ns, [names[i] for i in order], q[order], qd[order])
            messages.append((DEFAULT_STATE_TOPIC, STATE_TYPE, time_ns, state))
            messages.append((DEFAULT_ACTION_TOPIC, ARRAY_TYPE, time_ns + LATENCY_NS, array(episodes.actions[t])))
        start_ns += (end - first) * dt_ns + 10**9
    return messages


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_npz_to_bag_to_episodes(demos: Episodes, tmp_path: Path, storage: str) -> None:
    npz = tmp_path / "demos.npz"
    save_episodes(npz, demos)
    bag = write_bag(tmp_path / "bag", load_episodes(npz), format=storage)

    episodes, report = read_bag_episodes([bag], WITH_GOALS)

    assert_same(episodes, demos)
    assert report.commands_used == len(demos.states) and report.episodes == demos.num_episodes
    assert report.messages[DEFAULT_STATE_TOPIC] == len(demos.states)
    assert report.splits["gap"] == demos.num_episodes - 1
    assert sum(report.dropped.values()) == 0
    assert f"used {len(demos.states)} commands in {demos.num_episodes} episodes" in str(report)
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []  # no staging left


def test_several_bags_each_give_their_episodes(one_episode: Episodes, tmp_path: Path) -> None:
    bags = [write_bag(tmp_path / "a", one_episode), write_bag(tmp_path / "b", one_episode, format="sqlite3")]

    episodes, report = read_bag_episodes(bags, WITH_GOALS)

    assert_same(episodes, one_episode.select([0, 0]))
    assert report.bags == [str(bag) for bag in bags]


def test_write_bag_refuses_to_overwrite(one_episode: Episodes, tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", one_episode)
    before = sorted(p.name for p in bag.iterdir())
    with pytest.raises(FileExistsError):
        write_bag(bag, one_episode)
    assert sorted(p.name for p in bag.iterdir()) == before


def test_shuffled_joint_order_extra_joint_and_zero_stamps(demos: Episodes, tmp_path: Path) -> None:
    messages = recording(demos, np.random.default_rng(0), zero_stamps=True)
    bag = write_by_hand(tmp_path / "bag", messages)

    episodes, _ = read_bag_episodes([bag], BagReadConfig(goal_topic=DEFAULT_GOAL_TOPIC, joint_names=demos.joint_names))
    assert_same(episodes, demos)

    # Without joint_names, every joint of the first message is taken: four, for three command entries.
    with pytest.raises(BagError, match="the commands have 3 entries for the 4 joints .* give joint_names"):
        read_bag_episodes([bag], WITH_GOALS)


def replayed_with_fine_states(episodes: Episodes) -> tuple[Episodes, list[Message]]:
    """Replays the commands on the arm and records its state twice per control period.

    Returns the replayed episodes (state at each command) and a recording of them with states
    at twice the command rate, including the states after the last command.
    """
    coarse, fine = ArmSim(ArmConfig(control_dt=episodes.dt)), ArmSim(ArmConfig(control_dt=episodes.dt / 2))
    num_joints = fine.num_joints
    half_ns = round(episodes.dt * 1e9) // 2
    states, messages = [], []

    def publish(stamp_ns: int, state: np.ndarray) -> None:
        message = joint_state(stamp_ns, fine.joint_names, state[:num_joints], state[num_joints:])
        messages.append((DEFAULT_STATE_TOPIC, STATE_TYPE, stamp_ns, message))

    start_ns = START_NS
    for first, end in zip(episodes.episode_starts.tolist(), episodes.episode_ends.tolist()):
        q0, qd0 = episodes.states[first, :num_joints], episodes.states[first, num_joints:]
        coarse.reset(q0, qd0)
        state = fine.reset(q0, qd0)
        messages.append((DEFAULT_GOAL_TOPIC, ARRAY_TYPE, start_ns, array(episodes.goals[first])))
        for t in range(first, end):
            time_ns = start_ns + 2 * (t - first) * half_ns
            states.append(state)
            action = episodes.actions[t]
            messages.append((DEFAULT_ACTION_TOPIC, ARRAY_TYPE, time_ns + LATENCY_NS, array(action)))
            for sub in range(2):
                publish(time_ns + sub * half_ns, state)
                state = fine.step(action)
            np.testing.assert_allclose(state, coarse.step(action), atol=1e-9)  # sub-stepping is exact
        end_ns = start_ns + 2 * (end - first) * half_ns
        publish(end_ns, state)
        start_ns = end_ns + 10**9
    e = episodes
    return Episodes(np.array(states), e.actions, e.goals, e.episode_ends, e.dt, e.joint_names), messages


def test_state_topic_twice_as_fast_as_commands(tmp_path: Path) -> None:
    # Commands at 50 Hz, states at 100 Hz from the simulator sub-stepped at 10 ms (its timestep is 2 ms).
    expected, messages = replayed_with_fine_states(collect(CollectConfig(episodes=3, seed=2, control_dt=0.02)))
    bag = write_by_hand(tmp_path / "fast_states", messages, StoragePlugin.SQLITE3)

    episodes, report = read_bag_episodes([bag], WITH_GOALS)

    assert_same(episodes, expected)
    assert report.control_dt == pytest.approx(0.02)
    assert report.messages[DEFAULT_STATE_TOPIC] == 2 * report.messages[DEFAULT_ACTION_TOPIC] + expected.num_episodes


def test_write_bag_with_faster_states_reads_back(one_episode: Episodes, tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", one_episode, state_rate_multiple=4)
    episodes, report = read_bag_episodes([bag], WITH_GOALS)
    assert_same(episodes, one_episode)
    assert report.messages[DEFAULT_STATE_TOPIC] == 4 * len(one_episode.states) - 3


def test_states_slower_than_commands_pair_each_state_once(one_episode: Episodes, tmp_path: Path) -> None:
    # Every other state is missing: states at 50 Hz, commands at 100 Hz.
    messages = [m for m in recording(one_episode) if m[0] != DEFAULT_STATE_TOPIC or (m[2] // 10**7) % 2 == 0]
    bag = write_by_hand(tmp_path / "bag", messages)

    episodes, report = read_bag_episodes([bag], WITH_GOALS)

    assert report.control_dt == pytest.approx(0.02)
    rows = np.arange(0, len(one_episode.states), 2)
    np.testing.assert_allclose(episodes.states, one_episode.states[rows], atol=1e-6)
    np.testing.assert_allclose(episodes.actions, one_episode.actions[rows], atol=1e-6)
    assert report.dropped["commands: same state as the previous command"] == len(rows)


def test_gap_in_the_middle_splits_the_episode(one_episode: Episodes, tmp_path: Path) -> None:
    silent = (START_NS + 10**9, START_NS + 15 * 10**8)  # rows 100..149 lost
    messages = [m for m in recording(one_episode) if not silent[0] <= m[2] < silent[1]]
    bag = write_by_hand(tmp_path / "bag", messages)

    episodes, report = read_bag_episodes([bag], WITH_GOALS)

    rows = np.r_[0:100, 150:400]
    e = one_episode
    assert_same(episodes, Episodes(e.states[rows], e.actions[rows], e.goals[rows], [100, 350], e.dt, e.joint_names))
    assert report.splits["gap"] == 1


def test_goal_change_splits_the_episode(one_episode: Episodes, tmp_path: Path) -> None:
    messages = recording(one_episode)
    new_goal = one_episode.goals[0] + 0.3
    messages.append((DEFAULT_GOAL_TOPIC, ARRAY_TYPE, START_NS + 200 * 10**7, array(new_goal)))

    episodes, report = read_bag_episodes([write_by_hand(tmp_path / "bag", messages)], WITH_GOALS)

    np.testing.assert_array_equal(episodes.episode_ends, [200, 400])
    np.testing.assert_allclose(episodes.goals[200:], np.tile(new_goal, (200, 1)), atol=1e-6)
    assert report.splits["goal change"] == 1


def test_commands_before_the_first_state_and_goal_are_dropped(one_episode: Episodes, tmp_path: Path) -> None:
    messages = recording(one_episode)
    early = [(DEFAULT_ACTION_TOPIC, ARRAY_TYPE, START_NS - k * 10**7, array(one_episode.actions[0])) for k in (1, 2)]
    late_goal = [m for m in messages if m[0] != DEFAULT_GOAL_TOPIC]
    late_goal.append((DEFAULT_GOAL_TOPIC, ARRAY_TYPE, START_NS + 5 * 10**7, array(one_episode.goals[0])))

    _, report = read_bag_episodes([write_by_hand(tmp_path / "a", messages + early)], WITH_GOALS)
    assert report.dropped["commands: before the first state"] == 2
    episodes, report = read_bag_episodes([write_by_hand(tmp_path / "b", late_goal)], WITH_GOALS)
    assert report.dropped["commands: before the first goal"] == 5
    np.testing.assert_allclose(episodes.states, one_episode.states[5:], atol=1e-6)


def test_few_nan_and_repeated_stamps_are_dropped_and_counted(demos: Episodes, tmp_path: Path) -> None:
    messages = recording(demos)
    states = [m for m in messages if m[0] == DEFAULT_STATE_TOPIC]
    for k in (10, 700, 1500):
        states[k][3].velocity[1] = np.nan
    states[900][3].header.stamp = states[899][3].header.stamp
    commands = [m for m in messages if m[0] == DEFAULT_ACTION_TOPIC]
    commands[2100][3].data[0] = np.inf

    episodes, report = read_bag_episodes([write_by_hand(tmp_path / "bag", messages)], WITH_GOALS)

    assert report.dropped[f"{DEFAULT_STATE_TOPIC}: NaN/inf"] == 3
    assert report.dropped[f"{DEFAULT_ACTION_TOPIC}: NaN/inf"] == 1
    assert report.dropped[f"{DEFAULT_STATE_TOPIC}: out-of-order or repeated time"] == 1
    # A command whose state is missing sees the previous state again; its neighbours split the episode there.
    assert report.dropped["commands: same state as the previous command"] == 4
    assert report.commands_used == len(demos.states) - 5
    assert report.splits["timing break (lost command or no new state)"] == 5
    assert np.all(np.isfinite(episodes.states)) and "3 /joint_states: NaN/inf" in str(report)


def test_nan_above_the_threshold_is_refused(one_episode: Episodes, tmp_path: Path) -> None:
    messages = recording(one_episode)
    for topic, _, _, message in messages[1:80:2]:
        assert topic == DEFAULT_STATE_TOPIC
        message.position[0] = np.nan
    expected = r"40 of 400 messages on /joint_states hold NaN/inf \(10.0% > max_nan_fraction 1.0%\)"
    with pytest.raises(BagError, match=expected):
        read_bag_episodes([write_by_hand(tmp_path / "bag", messages)], WITH_GOALS)


def test_missing_topic_lists_the_topics_there(one_episode: Episodes, tmp_path: Path) -> None:
    messages = [m for m in recording(one_episode) if m[0] != DEFAULT_ACTION_TOPIC]
    bag = write_by_hand(tmp_path / "bag", messages)
    with pytest.raises(BagError) as error:
        read_bag_episodes([bag], WITH_GOALS)
    assert str(error.value) == (
        f"{bag}: no topic {DEFAULT_ACTION_TOPIC}; the bag has: {DEFAULT_GOAL_TOPIC} [{ARRAY_TYPE}], "
        f"{DEFAULT_STATE_TOPIC} [{STATE_TYPE}]"
    )


def test_wrong_message_type_is_refused(one_episode: Episodes, tmp_path: Path) -> None:
    float32 = TYPESTORE.types["std_msgs/msg/Float32MultiArray"]
    layout = TYPESTORE.types["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
    messages = [
        (m[0], "std_msgs/msg/Float32MultiArray", m[2], float32(layout=layout, data=m[3].data.astype(np.float32)))
        if m[0] == DEFAULT_ACTION_TOPIC else m
        for m in recording(one_episode)
    ]
    expected = f"{DEFAULT_ACTION_TOPIC} has type std_msgs/msg/Float32MultiArray, expected {ARRAY_TYPE}"
    with pytest.raises(BagError, match=expected):
        read_bag_episodes([write_by_hand(tmp_path / "bag", messages)])


def test_missing_joint_is_named(one_episode: Episodes, tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", one_episode)
    config = BagReadConfig(joint_names=one_episode.joint_names + ["wrist_roll"])
    expected = r"joint\(s\) \['wrist_roll'\] not in any message on /joint_states \(its messages name \['base_yaw'"
    with pytest.raises(BagError, match=expected):
        read_bag_episodes([bag], config)


def test_states_without_velocities_are_refused(one_episode: Episodes, tmp_path: Path) -> None:
    messages = recording(one_episode)
    for topic, _, _, message in messages:
        if topic == DEFAULT_STATE_TOPIC:
            message.velocity = np.zeros(0)
    expected = r"none of the 400 messages on /joint_states is usable \(400 /joint_states: no velocities"
    with pytest.raises(BagError, match=expected):
        read_bag_episodes([write_by_hand(tmp_path / "bag", messages)])


def test_empty_bags_are_refused(tmp_path: Path) -> None:
    write_by_hand(tmp_path / "nothing", [])
    with Writer(tmp_path / "topics_only", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        writer.add_connection(DEFAULT_STATE_TOPIC, STATE_TYPE, typestore=TYPESTORE)
        writer.add_connection(DEFAULT_ACTION_TOPIC, ARRAY_TYPE, typestore=TYPESTORE)
    for name in ("nothing", "topics_only"):
        with pytest.raises(BagError, match=f"{tmp_path / name}: the bag is empty"):
            read_bag_episodes([tmp_path / name])
    with pytest.raises(BagError, match="no such bag"):
        read_bag_episodes([tmp_path / "absent"])


@pytest.mark.parametrize(("storage", "suffix"), [("mcap", ".mcap"), ("sqlite3", ".db3")])
@pytest.mark.parametrize("kept", [0.5, 0.999])
def test_truncated_bag_is_refused_naming_it(
    one_episode: Episodes, tmp_path: Path, storage: str, suffix: str, kept: float
) -> None:
    bag = write_bag(tmp_path / "bag", one_episode, format=storage)
    data = bag / f"bag{suffix}"
    os.truncate(data, int(data.stat().st_size * kept))
    with pytest.raises(BagError, match=f"{bag}: cannot read the bag"):
        read_bag_episodes([bag])


def test_state_stamps_on_another_clock_are_refused(one_episode: Episodes, tmp_path: Path) -> None:
    messages = recording(one_episode)
    for topic, _, time_ns, message in messages:
        if topic == DEFAULT_STATE_TOPIC:  # simulated time from zero, recorded at wall-clock time
            message.header.stamp.sec -= START_NS // 10**9
    bag = write_by_hand(tmp_path / "bag", messages)
    with pytest.raises(BagError, match="on another clock than the commands; read with state_time='receive'"):
        read_bag_episodes([bag])
    episodes, _ = read_bag_episodes([bag], BagReadConfig(goal_topic=DEFAULT_GOAL_TOPIC, state_time="receive"))
    assert_same(episodes, one_episode)


def test_no_usable_pairs_is_refused(one_episode: Episodes, tmp_path: Path) -> None:
    # States recorded 10 s after all the commands.
    messages = recording(one_episode)
    later = [(topic, kind, t + 10**10 * (topic == DEFAULT_STATE_TOPIC), m) for topic, kind, t, m in messages]
    config = BagReadConfig(state_time="receive", control_dt=0.01)
    with pytest.raises(BagError, match=r"no usable \(state, command\) pairs; states span"):
        read_bag_episodes([write_by_hand(tmp_path / "bag", later)], config)


def test_export_cli_both_directions(demos: Episodes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    npz, bag, back = tmp_path / "demos.npz", tmp_path / "demos_bag", tmp_path / "back.npz"
    save_episodes(npz, demos)

    bag_export.main(["--npz", str(npz), "--output", str(bag), "--format", "sqlite3"])
    bag_export.main(["--bag", str(bag), "--output", str(back), "--goal_topic", DEFAULT_GOAL_TOPIC])

    assert_same(load_episodes(back), demos)
    assert (bag / "demos_bag.db3").exists()
    out = capsys.readouterr().out
    assert "used 2400 commands in 6 episodes" in out and f"wrote {back}: 6 episodes, 2400 steps, dt=0.01" in out

    with pytest.raises(SystemExit):
        bag_export.main(["--bag", str(bag), "--output", str(tmp_path / "x.npz"), "--joint_names", "nope"])
    assert "joint(s) ['nope'] not in any message" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()
    with pytest.raises(SystemExit):
        bag_export.main(["--output", str(tmp_path / "y.npz")])
