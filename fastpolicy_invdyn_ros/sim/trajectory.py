"""A joint trajectory followed as ros2_control's joint_trajectory_controller follows one: the simulated
position-controlled arm's second command input (``arm_sim``)."""
from __future__ import annotations

import numpy as np


class TrajectoryFollower:
    """The position setpoint of the newest trajectory at any time.

    A trajectory starts when it arrives (stamp zero) and replaces the one before; the setpoint goes
    linearly from the setpoint in force at its arrival through each point at its ``time_from_start``,
    then holds the last point, as the controller's linear interpolation does.
    """

    def __init__(self) -> None:
        self._times = np.zeros(1)
        self._positions: np.ndarray | None = None  # (K + 1, J): the setpoint at arrival, then the points

    @property
    def active(self) -> bool:
        """A trajectory has arrived."""
        return self._positions is not None

    def start(self, now_s: float, setpoint: np.ndarray, times_s: np.ndarray, positions: np.ndarray) -> None:
        """Follow ``positions`` (K, J) reached at ``now_s + times_s`` (K,), from ``setpoint`` (J,) now."""
        self._times = np.concatenate(([now_s], now_s + np.asarray(times_s, dtype=np.float64)))
        self._positions = np.vstack((setpoint, positions))

    def stop(self) -> None:
        """Follow nothing (another command input took over)."""
        self._positions = None

    def setpoint(self, now_s: float) -> np.ndarray:
        """(J,) the setpoint at ``now_s`` (needs ``active``)."""
        return np.array([np.interp(now_s, self._times, joint) for joint in self._positions.T])


def trajectory_problem(times_s: np.ndarray, positions: np.ndarray, num_joints: int) -> str:
    """Why a trajectory cannot be followed ('' when it can): no point, wrong sizes, NaN, times not increasing."""
    if len(times_s) == 0 or positions.shape != (len(times_s), num_joints):
        return f"needs at least one point of {num_joints} positions"
    if not (np.all(np.isfinite(positions)) and np.all(np.isfinite(times_s))):
        return "holds a value that is not finite"
    if times_s[0] <= 0.0 or np.any(np.diff(times_s) <= 0.0):
        return "needs point times after its start, increasing"
    return ""
