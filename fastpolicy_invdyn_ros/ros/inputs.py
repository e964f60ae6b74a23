"""The node's inputs, checked: joint states picked by name, and goals. Imports no ROS module.

Subscription callbacks hand the raw message fields to ``update``; the control tick calls ``read``,
which copies the newest good values and returns why the input cannot be used ("" when it can).
A bad message is latched until a tick has seen it, so even one bad message among good ones
yields one safe command; the input recovers by itself with the next good message.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from ..core.joints import JointIndex
from ..core.safety import StateBounds


class JointStateInput:
    """The newest good ``[q, qd]`` of ``joint_names``, whatever order the messages list them in.

    A message is good when its arrays are as long as its names, it names every configured joint
    exactly once, its stamp is later than the newest good message's (a rejected message never
    moves that mark, so an old state cannot sneak in behind one), and every picked value is finite
    and within ``bounds``. Input is stale when no good message arrived for ``timeout_s`` (or none at
    all yet). Reasons are fixed texts per kind of fault (no varying numbers), so repeats are
    recognisable; those of values outside the bounds say "input fault".
    """

    def __init__(self, joint_names: Sequence[str], timeout_s: float, bounds: StateBounds | None = None) -> None:
        self.joint_names = list(joint_names)
        self.timeout_s = timeout_s
        self.bounds = bounds
        num_joints = len(self.joint_names)
        self._lock = threading.Lock()
        self._joint_index = JointIndex(self.joint_names)
        self._scratch = np.zeros(2 * num_joints)
        self._outside = np.zeros(2 * num_joints, dtype=bool)
        self._above = np.zeros(2 * num_joints, dtype=bool)
        self._state = np.zeros(2 * num_joints)
        self._newest_stamp_ns = -1  # of the newest good message
        # Shared with the tick (under the lock):
        self._good_stamp_ns = 0
        self._received_s: float | None = None
        self._current = ""  # why the newest message is bad
        self._latched = ""  # the first bad message since the last read

    def update(self, names: Sequence[str], positions: Sequence[float], velocities: Sequence[float],
               stamp_ns: int, received_s: float) -> None:
        """Check one message (called from the subscription, one at a time)."""
        reason = self._check(names, positions, velocities, stamp_ns)
        if not reason:
            self._newest_stamp_ns = stamp_ns
        with self._lock:
            self._current = reason
            if reason:
                self._latched = self._latched or reason
            else:
                self._state[:] = self._scratch
                self._good_stamp_ns, self._received_s = stamp_ns, received_s

    def read(self, now_s: float, out: np.ndarray) -> tuple[str, int]:
        """Copy the newest good state into ``out``; returns (why it is unusable or "", its stamp in ns)."""
        with self._lock:
            reason = self._latched or self._current
            self._latched = ""
            if not reason:
                if self._received_s is None:
                    reason = "no joint_states received yet"
                elif now_s - self._received_s > self.timeout_s:
                    reason = f"no valid joint_states for more than state_timeout_s ({self.timeout_s:g} s)"
                else:
                    out[:] = self._state
            return reason, self._good_stamp_ns

    def _check(self, names: Sequence[str], positions: Sequence[float], velocities: Sequence[float],
               stamp_ns: int) -> str:
        if len(positions) != len(names) or len(velocities) != len(names):
            return (f"joint_states arrays of mismatched length: {len(names)} names, "
                    f"{len(positions)} positions, {len(velocities)} velocities")
        layout = self._joint_index.layout(names)
        if layout.index is None:
            return f"joint_states {layout.problem}"
        if stamp_ns <= self._newest_stamp_ns:
            return f"joint_states stamp {'repeated' if stamp_ns == self._newest_stamp_ns else 'went backwards'}"
        num_joints = len(self.joint_names)
        np.take(np.asarray(positions, dtype=np.float64), layout.index, out=self._scratch[:num_joints])
        np.take(np.asarray(velocities, dtype=np.float64), layout.index, out=self._scratch[num_joints:])
        if not np.isfinite(self._scratch).all():
            bad = np.flatnonzero(~np.isfinite(self._scratch)) % num_joints
            return f"non-finite position/velocity of joint(s) {sorted({self.joint_names[i] for i in bad})}"
        if self.bounds is not None:
            np.less(self._scratch, self.bounds.low, out=self._outside)
            np.greater(self._scratch, self.bounds.high, out=self._above)
            self._outside |= self._above
            if self._outside.any():
                bad = np.flatnonzero(self._outside)
                joints = sorted({self.joint_names[i % num_joints] for i in bad})
                kinds = " and ".join(kind for kind, part in (("position", bad < num_joints),
                                                             ("velocity", bad >= num_joints)) if part.any())
                return f"input fault: joint_states {kinds} of joint(s) {joints} outside the robot's range"
        return ""


class GoalInput:
    """The newest good goal (``size`` finite values, within ``low``/``high`` if given); a bad one is ignored
    but reported once."""

    def __init__(self, size: int, low: np.ndarray | None = None, high: np.ndarray | None = None) -> None:
        self.size = size
        self.low, self.high = low, high
        self._lock = threading.Lock()
        self._goal = np.zeros(size)
        self._received = False
        self._latched = ""

    def update(self, values: Sequence[float]) -> None:
        goal = np.asarray(values, dtype=np.float64)
        if goal.shape != (self.size,):
            reason = f"goal ignored: {goal.size} values, expected {self.size}"
        elif not np.isfinite(goal).all():
            reason = "goal ignored: it holds NaN/inf"
        elif self.low is not None and (np.any(goal < self.low) or np.any(goal > self.high)):
            reason = "goal ignored: outside the joints' ranges"
        else:
            reason = ""
        with self._lock:
            if reason:
                self._latched = self._latched or reason
            else:
                self._goal[:] = goal
                self._received = True

    def read(self, out: np.ndarray) -> tuple[str, bool]:
        """Copy the last good goal into ``out``; returns (a bad goal since the last read or "", any good goal yet)."""
        with self._lock:
            reason, self._latched = self._latched, ""
            if self._received:
                out[:] = self._goal
            return reason, self._received
