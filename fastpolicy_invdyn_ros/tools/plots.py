"""Figures of the tools' results (matplotlib, written as PNG files without a display)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_reach(path: Path, time_s: np.ndarray, states: np.ndarray, goals: np.ndarray, commands: np.ndarray,
               joint_names: list[str], command_unit: str, title: str) -> None:
    """Joint positions against the goal (dashed) above the commands (in ``command_unit``), over one reach."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for j, name in enumerate(joint_names):
        line, = top.plot(time_s, states[:, j], label=name)
        top.plot(time_s, goals[:, j], "--", color=line.get_color(), linewidth=0.8)
        bottom.plot(time_s, commands[:, j], color=line.get_color(), label=name)
    top.set_ylabel("position [rad] (dashed: goal)")
    bottom.set_ylabel(f"command [{command_unit}]")
    bottom.set_xlabel("time [s]")
    top.legend(loc="upper right", fontsize=8, ncol=len(joint_names))
    fig.suptitle(title)
    _save(fig, path)


def plot_predicted_actions(path: Path, time_s: np.ndarray, recorded: np.ndarray, predictions: dict[str, np.ndarray],
                           labels: list[str]) -> None:
    """Predicted against recorded actions over one episode, a panel per action entry (``labels``: its name and
    unit)."""
    fig, axes = plt.subplots(recorded.shape[1], 1, figsize=(10, 2.6 * recorded.shape[1]), sharex=True)
    axes = np.atleast_1d(axes)
    for entry, ax in enumerate(axes):
        ax.plot(time_s, recorded[:, entry], color="black", linewidth=2.0, label="recorded")
        for name, predicted in predictions.items():
            ax.plot(time_s, predicted[:, entry], linewidth=1.0, label=name)
        ax.set_ylabel(labels[entry])
    axes[0].legend(loc="upper right", ncol=5, fontsize=8)
    axes[-1].set_xlabel("time [s]")
    fig.suptitle("Inverse dynamics on a held-out episode: predicted vs recorded actions")
    _save(fig, path)


def plot_paths(path: Path, runs: dict[str, list], obstacle, joint_names: list[str]) -> None:
    """Paths in the keep-out disk's plane, a panel per controller: each episode from its start (circle) to its
    goal (cross), the disk grey."""
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 4.4), sharex=True, sharey=True, squeeze=False)
    for ax, (name, records) in zip(axes[0], runs.items()):
        ax.add_patch(plt.Circle(obstacle.center, obstacle.radius, color="0.75", zorder=0))
        for record in records:
            xy = record.states[:, list(obstacle.joints)]
            line, = ax.plot(xy[:, 0], xy[:, 1], linewidth=1.0)
            ax.plot(*xy[0], "o", color=line.get_color(), markersize=4)
            ax.plot(*record.goals[0, list(obstacle.joints)], "x", color=line.get_color(), markersize=6)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(f"{joint_names[0]} [rad]")
        ax.set_aspect("equal")
    axes[0, 0].set_ylabel(f"{joint_names[1]} [rad]")
    fig.suptitle("paths past the keep-out disk (grey): start o, goal x")
    _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
