"""``record`` over real DDS: arm_sim driven by the scripted expert, the recorder writing a rosbag2, each in
its own process in a private ROS domain; the bag is sane and trains an inverse dynamics model as well as
the same episodes exported to NPZ do."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fastpolicy_invdyn_ros.tools import bag_export, demo
from fastpolicy_invdyn_ros.core.bags import (
    DEFAULT_ACTION_TOPIC,
    DEFAULT_GOAL_TOPIC,
    DEFAULT_STATE_TOPIC,
    BagReadConfig,
    read_bag_episodes,
)
from fastpolicy_invdyn_ros.core.checkpoint import load_invdyn
from fastpolicy_invdyn_ros.core.data import Episodes, invdyn_windows, split_episodes
from fastpolicy_invdyn_ros.core.paths import share_path
from fastpolicy_invdyn_ros.sim.goals import session_goals
from fastpolicy_invdyn_ros.sim import ArmSim

# The bags are recorded in real time over DDS: on a machine whose cores another test keeps busy, commands reach
# the arm late and the recording fits its own dynamics less well (held-out MSE 7-13% of the mean's, against
# under 5% alone). ``make test`` runs these after the rest, with nothing else running.
pytestmark = pytest.mark.alone

GOALS, SECONDS_PER_GOAL, SEED = 8, 3.0, 3
COMMANDS = round(GOALS * SECONDS_PER_GOAL * 100)  # 100 Hz
WITH_GOALS = BagReadConfig(goal_topic=DEFAULT_GOAL_TOPIC)
TRAIN = dict(model_type="enhanced", hidden_dim=128, num_layers=2, steps=400, batch_size=256, seed=0,
             progress=False, eval_every=400, checkpoint_every=400)


def run_record(*args: str, timeout_s: float = 240.0) -> subprocess.CompletedProcess:
    """``record`` in its own process (it starts arm_sim and the expert as processes of their own)."""
    return subprocess.run([sys.executable, "-m", "fastpolicy_invdyn_ros.tools.record", *args],
                          capture_output=True, text=True, timeout=timeout_s)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """8 goals x 3 s recorded from the simulated arm (a 24 s MCAP bag); the bag and what record printed."""
    bag = tmp_path_factory.mktemp("record") / "demos_bag"
    result = run_record("--output", str(bag), "--goals", str(GOALS), "--seconds_per_goal", str(SECONDS_PER_GOAL),
                        "--seed", str(SEED))
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    return bag, result.stdout


def test_the_recorded_bag_is_sane(recording: tuple[Path, str]) -> None:
    bag, printed = recording
    assert sorted(file.name for file in bag.iterdir()) == ["demos_bag.mcap", "metadata.yaml"]
    assert [path.name for path in bag.parent.iterdir()] == ["demos_bag"], "no staging directory is left behind"
    for topic in (DEFAULT_STATE_TOPIC, DEFAULT_ACTION_TOPIC, DEFAULT_GOAL_TOPIC):
        assert topic in printed
    assert "goals reached" in printed and "as the trainer reads it" in printed

    episodes, report = read_bag_episodes([bag], WITH_GOALS)
    print(report)
    states = report.messages[DEFAULT_STATE_TOPIC]
    commands = report.messages[DEFAULT_ACTION_TOPIC]
    sent = int(re.search(r"expert: (\d+) commands", printed).group(1))
    assert commands == pytest.approx(sent, abs=2), "the recorder keeps every command the expert sent"
    assert sent == pytest.approx(COMMANDS, rel=0.02), "100 Hz for 8 x 3 s (a busy machine skips a few ticks)"
    assert states >= 0.7 * 500 * GOALS * SECONDS_PER_GOAL, "joint states every 2 ms physics step (500 Hz)"
    assert episodes.joint_names == ArmSim().joint_names
    assert episodes.dt == pytest.approx(0.01, abs=2e-4)
    # Episodes split at goal changes: one goal per episode, the expert's seeded goals in order.
    assert report.splits["goal change"] == GOALS - 1
    planned = np.array(session_goals(ArmSim(), SEED, GOALS, 0.3, 0.25)[1])
    starts = episodes.episode_starts
    assert all(np.all(episodes.goals[start:end] == episodes.goals[start])
               for start, end in zip(starts, episodes.episode_ends))
    goal_of_episode = [int(np.argmin(np.abs(planned - episodes.goals[start]).max(axis=1))) for start in starts]
    assert np.allclose(episodes.goals[starts], planned[goal_of_episode], atol=1e-6)
    assert sorted(set(goal_of_episode)) == list(range(GOALS)) and goal_of_episode == sorted(goal_of_episode)
    # Few drops: nearly every command becomes a row. (On a busy machine late timer ticks of the arm or the
    # expert break the 10 ms rhythm; the reader splits the episode there and drops a command left alone.)
    dropped = sum(count for reason, count in report.dropped.items() if reason.startswith("commands"))
    assert dropped <= 0.15 * commands and report.commands_used >= 0.8 * commands, report
    # Rows are one control period apart: positions advance by dt times the mean velocity.
    num_joints = len(episodes.joint_names)
    rows = np.setdiff1d(np.arange(len(episodes.states)), episodes.episode_ends - 1)
    q, qd = episodes.states[:, :num_joints], episodes.states[:, num_joints:]
    predicted = q[rows] + 0.5 * episodes.dt * (qd[rows] + qd[rows + 1])
    moved = np.abs(q[rows + 1] - q[rows])
    assert np.median(np.abs(q[rows + 1] - predicted)) < 0.1 * np.median(moved[moved > 1e-4])


def test_bag_trains_as_well_as_its_npz_export(recording: tuple[Path, str], tmp_path: Path) -> None:
    from fastpolicy_invdyn_ros.core.training import TrainConfig, train

    bag, _ = recording
    npz = tmp_path / "demos.npz"
    bag_export.main(["--bag", str(bag), "--output", str(npz), "--goal_topic", DEFAULT_GOAL_TOPIC])
    from_bag = train(TrainConfig(bag=[str(bag)], bag_reading=WITH_GOALS, output_dir=str(tmp_path / "bag"),
                                 **TRAIN))
    from_npz = train(TrainConfig(data=[str(npz)], output_dir=str(tmp_path / "npz"), **TRAIN))
    train_part, _ = bag_split(bag)
    fit, mean_fit = action_mse(from_bag.final_path, train_part)
    print(f"held-out action MSE: bag {from_bag.val_metric:.4f}, NPZ {from_npz.val_metric:.4f}; "
          f"training split: bag model {fit:.4f}, predicting the mean {mean_fit:.4f}")
    assert from_bag.val_metric == pytest.approx(from_npz.val_metric, rel=0.1)
    # It learned at all: judged on what it was trained on. The held-out tenth is one or two goals of
    # eight, whose score says more about the goal draw than about the bag (a held-out goal may need
    # torques no training goal did); that the recording's states and commands pair up right is what
    # the shipped model's held-out score in the round trip checks.
    assert fit < 0.25 * mean_fit


def test_sqlite3_and_existing_output(tmp_path: Path) -> None:
    bag = tmp_path / "short_bag"
    result = run_record("--output", str(bag), "--goals", "2", "--seconds_per_goal", "1.5", "--seed", "1",
                        "--format", "sqlite3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(file.name for file in bag.iterdir()) == ["metadata.yaml", "short_bag.db3"]
    episodes, report = read_bag_episodes([bag], WITH_GOALS)
    assert report.splits["goal change"] == 1 and report.commands_used >= 250, report
    before = {file.name: file.stat().st_mtime_ns for file in bag.iterdir()}
    again = run_record("--output", str(bag), "--goals", "1", timeout_s=60.0)
    assert again.returncode == 2 and "exists already" in again.stderr
    assert {file.name: file.stat().st_mtime_ns for file in bag.iterdir()} == before
    assert [path.name for path in tmp_path.iterdir()] == ["short_bag"]


def bag_split(bag: Path) -> tuple[Episodes, Episodes]:
    """The training and held-out episodes of ``bag`` as the trainer splits them by default."""
    from fastpolicy_invdyn_ros.core.training import TrainConfig

    episodes, _ = read_bag_episodes([bag], WITH_GOALS)
    return split_episodes(episodes, TrainConfig.val_fraction, TrainConfig.seed)


def action_mse(checkpoint: Path, episodes: Episodes) -> tuple[float, float]:
    """Action MSE of the model on ``episodes`` and that of predicting the mean action (zero), both in the
    checkpoint's normalized units."""
    model = load_invdyn(checkpoint)
    windows = {name: torch.as_tensor(array, dtype=torch.float32)
               for name, array in invdyn_windows(episodes, model.config.seq_length).items()}
    units = model.normalizer
    actions = units.normalize_action(windows["action"])
    with torch.inference_mode():
        predicted = model(units.normalize_state(windows["history"]), units.normalize_state(windows["next_state"]))
    return float(torch.mean((predicted - actions) ** 2)), float(torch.mean(actions**2))


def test_round_trip_record_train_from_the_bag_and_drive_the_arm(recording: tuple[Path, str], tmp_path: Path) -> None:
    """The README's workflow: record, fine-tune the shipped model on the bag with the trainer's console
    script, run the node with the new checkpoint against the simulated arm over DDS."""
    bag, _ = recording
    shipped = share_path("models", "invdyn_enhanced_final.pth")
    trainer = Path(sys.executable).parent / "trainer"
    result = subprocess.run([str(trainer), "--bag", str(bag), "--goal_topic", DEFAULT_GOAL_TOPIC, "--init_from",
                             str(shipped), "--steps", "200", "--lr", "1e-5", "--output_dir", str(tmp_path / "model"),
                             "--no-progress"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    retrained = tmp_path / "model" / "invdyn_enhanced_final.pth"
    _, held_out = bag_split(bag)
    (before, mean_predictor), (after, _) = action_mse(shipped, held_out), action_mse(retrained, held_out)
    print(f"held-out action MSE on the recording: shipped model {before:.4f}, retrained {after:.4f}, "
          f"predicting the mean {mean_predictor:.4f}")
    shipped_weights = load_invdyn(shipped).state_dict()
    assert any(not torch.equal(value, shipped_weights[name]) for name, value in load_invdyn(retrained).state_dict().items())
    # The shipped model already fits the recording (same arm): fine-tuned on 24 s of it, it must still fit
    # the held-out goal far better than the mean does. Not compared with the shipped model's score: on one
    # held-out goal of eight that ranged from 0.0005 to 0.018, and fine-tuning on seven goals may fit the
    # eighth somewhat worse (1.2x to 4.6x seen); the closed loop below is the real judge.
    assert after < 0.05 * mean_predictor

    assert demo.main(["--goals", "3", "--seed", "1", "--invdyn_model_path", str(retrained),
                      "--output_dir", str(tmp_path / "demo")]) == 0
    report = json.loads((tmp_path / "demo" / "summary.json").read_text())["report"]
    assert report["num_goals"] == 3 and report["reached"] >= 2, report


def test_ctrl_c_ends_the_recording_early_and_keeps_what_was_recorded(tmp_path: Path) -> None:
    """SIGINT to the process group (record, arm_sim and the expert alike), as a terminal's Ctrl-C: every
    process exits 0 without a traceback and the bag holds the recording so far, as ros2 bag record's would."""
    bag, logs = tmp_path / "cut_bag", tmp_path / "logs"
    process = subprocess.Popen([sys.executable, "-m", "fastpolicy_invdyn_ros.tools.record", "--output", str(bag),
                                "--goals", "10", "--seconds_per_goal", "3", "--log_dir", str(logs)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    expert_log = logs / "expert.log"
    deadline = time.monotonic() + 120.0
    while not (expert_log.exists() and "starting" in expert_log.read_text()) and time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.2)
    time.sleep(2.0)
    os.killpg(process.pid, signal.SIGINT)
    printed = process.communicate(timeout=60.0)[0]
    assert process.returncode == 0, printed
    assert "Traceback" not in printed and "interrupted after" in printed, printed
    for name in ("arm_sim", "expert"):
        assert "Traceback" not in (logs / f"{name}.log").read_text()
    episodes, report = read_bag_episodes([bag], WITH_GOALS)
    assert 100 <= report.messages[DEFAULT_ACTION_TOPIC] < 10 * 3 * 100, report
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == [], "no staging left"
