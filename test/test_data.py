"""The episode format, splits and training windows."""
import numpy as np
import pytest

from fastpolicy_invdyn_ros.core.data import (
    Episodes,
    invdyn_windows,
    load_episodes,
    planner_windows,
    save_episodes,
    split_episodes,
)


def numbered(lengths=(4, 3, 5)) -> Episodes:
    """States whose first column is the row index, so windows can be read off directly."""
    n = sum(lengths)
    states = np.stack([np.arange(n), -np.arange(n)], axis=1).astype(np.float32)
    return Episodes(states=states, actions=states[:, :1] * 10, goals=np.zeros((n, 1)),
                    episode_ends=np.cumsum(lengths), dt=0.02, joint_names=["j"])


def test_npz_round_trip(tmp_path):
    episodes = numbered()
    save_episodes(tmp_path / "demos.npz", episodes)
    loaded = load_episodes(tmp_path / "demos.npz")
    assert np.array_equal(loaded.states, episodes.states)
    assert np.array_equal(loaded.episode_ends, [4, 7, 12])
    assert loaded.dt == 0.02 and loaded.joint_names == ["j"]


def test_invalid_episodes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        Episodes(states=[[np.nan]], actions=[[0.0]], goals=[[0.0]], episode_ends=[1], dt=0.1, joint_names=["j"])
    with pytest.raises(ValueError, match="episode_ends"):
        Episodes(states=[[0.0]] * 3, actions=[[0.0]] * 3, goals=[[0.0]] * 3, episode_ends=[2], dt=0.1,
                 joint_names=["j"])
    np.savez(tmp_path / "partial.npz", states=np.zeros((2, 1)))
    with pytest.raises(ValueError, match="missing arrays"):
        load_episodes(tmp_path / "partial.npz")


def test_invdyn_windows_never_cross_episodes():
    windows = invdyn_windows(numbered(), seq_length=3)
    # Transitions: 3 + 2 + 4 (the last state of an episode has no successor).
    assert len(windows["action"]) == 9
    first_of_second_episode = 3  # anchors 0,1,2 then 4,...
    assert windows["history"][first_of_second_episode, :, 0].tolist() == [4, 4, 4]
    assert windows["next_state"][first_of_second_episode, 0] == 5
    assert windows["history"][2, :, 0].tolist() == [0, 1, 2]
    assert windows["action"][2, 0] == 20


def test_planner_windows_pad_with_the_last_state_of_the_episode():
    windows = planner_windows(numbered(), n_obs_steps=2, horizon=4)
    assert windows["future"][0, :, 0].tolist() == [1, 2, 3, 3]
    assert windows["history"][0, :, 0].tolist() == [0, 0]
    assert windows["goal"].shape == (9, 1)


def test_split_is_by_episode_and_reproducible():
    episodes = numbered((3,) * 20)
    train, val = split_episodes(episodes, 0.2, seed=1)
    assert train.num_episodes == 16 and val.num_episodes == 4
    assert set(train.states[:, 0]).isdisjoint(val.states[:, 0])
    again, _ = split_episodes(episodes, 0.2, seed=1)
    assert np.array_equal(train.states, again.states)
