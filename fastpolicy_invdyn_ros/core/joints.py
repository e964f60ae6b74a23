"""Joints picked by name from messages that list them in any order (sensor_msgs/JointState, bags)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_CACHED_LAYOUTS = 16
"""Distinct name lists remembered; a sender uses one or two, a stream of garbage must not grow memory."""


@dataclass(frozen=True)
class JointLayout:
    """Where the configured joints sit in one list of names."""

    index: np.ndarray | None
    """(J,) position of each configured joint in the list; None when the list cannot be used."""
    problem: str
    """Why the list cannot be used ('' when it can): a joint missing, or a name listed twice."""


class JointIndex:
    """Maps name lists to the positions of ``joint_names`` in them, remembering the lists it has seen.

    A list that names a joint twice is refused whatever its values: which of the two is the joint's
    cannot be known. Problems are fixed texts per list, so repeats are recognisable in logs.
    """

    def __init__(self, joint_names: Sequence[str]) -> None:
        self.joint_names = [str(name) for name in joint_names]
        self._layouts: dict[tuple[str, ...], JointLayout] = {}

    def layout(self, names: Sequence[str]) -> JointLayout:
        """The layout of ``names`` (computed once per distinct list)."""
        key = tuple(names)
        found = self._layouts.get(key)
        if found is None:
            found = self._compute(key)
            if len(self._layouts) >= MAX_CACHED_LAYOUTS:
                self._layouts.clear()
            self._layouts[key] = found
        return found

    def _compute(self, names: tuple[str, ...]) -> JointLayout:
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            return JointLayout(None, f"names joint(s) {repeated} more than once")
        where = {name: i for i, name in enumerate(names)}
        missing = [name for name in self.joint_names if name not in where]
        if missing:
            return JointLayout(None, f"lacks joint(s) {missing}")
        return JointLayout(np.array([where[name] for name in self.joint_names], dtype=np.intp), "")
