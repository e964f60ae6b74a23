"""Demonstrations: the NPZ episode format, episode splits and training windows.

An ``Episodes`` holds flat arrays; episode ``i`` spans ``[episode_ends[i-1], episode_ends[i])``.
``actions[t]`` is the command applied in ``states[t]`` for one control period ``dt``, so it
leads to ``states[t + 1]`` when that index lies in the same episode.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import atomic_file
from .robot import RobotDescription, RobotMismatch, default_description


@dataclass
class Episodes:
    """A set of demonstration episodes stored as flat, time-ordered arrays."""

    states: np.ndarray
    """(N, S) float32: joint positions then joint velocities."""
    actions: np.ndarray
    """(N, A) float32: the command applied at each state (per ``robot.command_interface``)."""
    goals: np.ndarray
    """(N, G) float32: the goal in force at each state (what each entry is: ``robot.goal_names``)."""
    episode_ends: np.ndarray
    """(E,) int64: exclusive end index of each episode; the last one equals N."""
    dt: float
    """Control period in seconds between consecutive states."""
    joint_names: list[str]
    """Names of the J joints, in the order the state and action columns use."""
    robot: RobotDescription | None = None
    """The robot the data comes from; None: what the arrays tell (``robot.default_description``)."""

    def __post_init__(self) -> None:
        self.states = np.asarray(self.states, dtype=np.float32)
        self.actions = np.asarray(self.actions, dtype=np.float32)
        self.goals = np.asarray(self.goals, dtype=np.float32)
        self.episode_ends = np.asarray(self.episode_ends, dtype=np.int64)
        # Data that names no joints: one per action entry, by position.
        self.joint_names = [str(name) for name in self.joint_names] or [f"joint_{i}" for i in range(self.actions.shape[-1])]
        self.dt = float(self.dt)
        if self.robot is None:
            self.robot = default_description(self.joint_names, self.dt, self.state_dim, self.goal_dim)
        self._validate()

    def _validate(self) -> None:
        n = len(self.states)
        if self.states.ndim != 2 or self.actions.ndim != 2 or self.goals.ndim != 2:
            raise ValueError("states, actions and goals must be 2-D arrays (N, dim)")
        if len(self.actions) != n or len(self.goals) != n:
            raise ValueError(
                f"states, actions and goals must have the same length, got "
                f"{n}, {len(self.actions)}, {len(self.goals)}"
            )
        ends = self.episode_ends
        if ends.ndim != 1 or len(ends) == 0 or ends[-1] != n or np.any(np.diff(ends) <= 0) or ends[0] <= 0:
            raise ValueError(f"episode_ends must be increasing, positive and end at N={n}, got {ends[:5]}...")
        if not self.dt > 0:
            raise ValueError(f"dt must be positive, got {self.dt}")
        for name, array in (("states", self.states), ("actions", self.actions), ("goals", self.goals)):
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{name} contain NaN or inf")
        if self.robot.joint_names != self.joint_names or not np.isclose(self.robot.control_dt, self.dt, rtol=0.01):
            raise RobotMismatch(f"joints {self.joint_names} and dt {self.dt:g} s differ from the robot description's "
                                f"{self.robot.joint_names} and {self.robot.control_dt:g} s")
        self.robot.check_sizes(self.state_dim, self.action_dim, self.goal_dim)

    @property
    def num_episodes(self) -> int:
        return len(self.episode_ends)

    @property
    def episode_starts(self) -> np.ndarray:
        return np.concatenate([[0], self.episode_ends[:-1]])

    @property
    def state_dim(self) -> int:
        return self.states.shape[1]

    @property
    def action_dim(self) -> int:
        return self.actions.shape[1]

    @property
    def goal_dim(self) -> int:
        return self.goals.shape[1]

    def episode(self, i: int) -> Episodes:
        return self.select([i])

    def select(self, indices: list[int] | np.ndarray) -> Episodes:
        """The episodes at ``indices``, in that order."""
        starts, ends = self.episode_starts, self.episode_ends
        spans = [np.arange(starts[i], ends[i]) for i in indices]
        rows = np.concatenate(spans)
        return Episodes(
            states=self.states[rows],
            actions=self.actions[rows],
            goals=self.goals[rows],
            episode_ends=np.cumsum([len(span) for span in spans]),
            dt=self.dt,
            joint_names=self.joint_names,
            robot=self.robot,
        )


def save_episodes(path: str | Path, episodes: Episodes) -> None:
    """Write episodes as one NPZ file, atomically (a partial file never has the final name)."""
    with atomic_file(path) as handle:
        np.savez_compressed(
            handle,
            states=episodes.states,
            actions=episodes.actions,
            goals=episodes.goals,
            episode_ends=episodes.episode_ends,
            dt=np.float64(episodes.dt),
            joint_names=np.array(episodes.joint_names),
            robot=np.array(json.dumps(episodes.robot.to_dict())),
        )


def load_episodes(path: str | Path) -> Episodes:
    """Read an NPZ written by ``save_episodes`` (or by hand in the same format; ``robot``, a JSON robot
    description, is optional)."""
    with np.load(path, allow_pickle=False) as npz:
        missing = {"states", "actions", "goals", "episode_ends", "dt", "joint_names"} - set(npz.files)
        if missing:
            raise ValueError(f"{path}: missing arrays {sorted(missing)} (has {sorted(npz.files)})")
        return Episodes(
            states=npz["states"],
            actions=npz["actions"],
            goals=npz["goals"],
            episode_ends=npz["episode_ends"],
            dt=float(npz["dt"]),
            joint_names=npz["joint_names"].tolist(),
            robot=RobotDescription.from_dict(json.loads(str(npz["robot"]))) if "robot" in npz.files else None,
        )


def split_episodes(episodes: Episodes, val_fraction: float, seed: int) -> tuple[Episodes, Episodes]:
    """Split whole episodes (never single steps) into a training and a validation set."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if episodes.num_episodes < 2:
        raise ValueError("need at least 2 episodes to hold some out for validation")
    order = np.random.default_rng(seed).permutation(episodes.num_episodes)
    num_val = min(max(1, round(val_fraction * episodes.num_episodes)), episodes.num_episodes - 1)
    return episodes.select(np.sort(order[num_val:])), episodes.select(np.sort(order[:num_val]))


def transition_anchors(episodes: Episodes) -> np.ndarray:
    """Indices t whose successor t + 1 lies in the same episode."""
    last_of_episode = episodes.episode_ends - 1
    return np.setdiff1d(np.arange(len(episodes.states)), last_of_episode)


def gather_windows(episodes: Episodes, array: np.ndarray, anchors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``array[anchor + offset]`` for every anchor and offset, clamped to the anchor's episode.

    Clamping repeats the first state before an episode starts (a robot at rest before it moved)
    and the last state after it ends (at rest at the end), instead of crossing into a neighbour.
    """
    episode_of = np.searchsorted(episodes.episode_ends, anchors, side="right")
    first = episodes.episode_starts[episode_of][:, None]
    last = episodes.episode_ends[episode_of][:, None] - 1
    rows = np.clip(anchors[:, None] + offsets[None, :], first, last)
    return array[rows]


def invdyn_windows(episodes: Episodes, seq_length: int) -> dict[str, np.ndarray]:
    """Training samples for inverse dynamics: (last ``seq_length`` states, next state) -> action."""
    anchors = transition_anchors(episodes)
    return {
        "history": gather_windows(episodes, episodes.states, anchors, np.arange(1 - seq_length, 1)),
        "next_state": episodes.states[anchors + 1],
        "action": episodes.actions[anchors],
    }


def planner_windows(episodes: Episodes, n_obs_steps: int, horizon: int) -> dict[str, np.ndarray]:
    """Training samples for the planner: (last ``n_obs_steps`` states, goal) -> next ``horizon`` states."""
    anchors = transition_anchors(episodes)
    return {
        "history": gather_windows(episodes, episodes.states, anchors, np.arange(1 - n_obs_steps, 1)),
        "goal": episodes.goals[anchors],
        "future": gather_windows(episodes, episodes.states, anchors, np.arange(1, horizon + 1)),
    }
