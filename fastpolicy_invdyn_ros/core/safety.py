"""What the controller does when it cannot trust its input or its models: the safe command, and the states
it accepts at all."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .settings import check, setting

SAFE_MODES = ("hold", "zero")


@dataclass
class SafetyConfig:
    """When and how the safe command replaces the policy's; every field may change between ticks."""

    safe_mode: str = setting("hold", choices=SAFE_MODES)
    """The safe command on bad or stale input or a policy failure: hold the last command, or ramp to zero
    (both through the slew limit)."""
    state_timeout_s: float = setting(0.1, low=0.001, high=60.0)
    """Seconds without a valid joint state before the safe command is used."""

    def __post_init__(self) -> None:
        check(self)


@dataclass(frozen=True)
class StateBounds:
    """The states a controller accepts: each joint's position within its range and its speed within its limit,
    widened by a margin (a sensor may read a little past a soft limit). Anything else (1e30 from a broken
    driver) is an input fault, not a state to act on."""

    low: np.ndarray
    """(2J,) lowest accepted [q, qd]."""
    high: np.ndarray
    """(2J,) highest accepted [q, qd]."""

    @classmethod
    def from_limits(cls, position_low: Sequence[float], position_high: Sequence[float],
                    velocity_limit: Sequence[float], margin: float) -> StateBounds:
        """Position ranges and speed limits per joint, each widened by ``margin`` times its size."""
        low, high = np.asarray(position_low, dtype=np.float64), np.asarray(position_high, dtype=np.float64)
        speed = np.asarray(velocity_limit, dtype=np.float64)
        if not (low.shape == high.shape == speed.shape and low.ndim == 1):
            raise ValueError("position ranges and velocity limits need one value per joint")
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(np.isfinite(speed))):
            raise ValueError("position ranges and velocity limits must be finite")
        if np.any(low > high) or np.any(speed <= 0.0) or margin < 0.0:
            raise ValueError("need position low <= high, velocity limits > 0 and a margin >= 0")
        widen = margin * (high - low)
        speed = speed * (1.0 + margin)
        bounds = cls(np.concatenate((low - widen, -speed)), np.concatenate((high + widen, speed)))
        bounds.low.setflags(write=False)
        bounds.high.setflags(write=False)
        return bounds

    @classmethod
    def from_data(cls, state_low: Sequence[float], state_high: Sequence[float], margin: float) -> StateBounds:
        """The bounds of states seen in training (per state dimension: [q, qd]), speeds made symmetric."""
        low, high = np.asarray(state_low, dtype=np.float64), np.asarray(state_high, dtype=np.float64)
        joints = len(low) // 2
        speed = np.maximum(np.abs(low[joints:]), np.abs(high[joints:]))
        return cls.from_limits(low[:joints], high[:joints], np.maximum(speed, 1e-3), margin)
