"""The action smoother: first-order low-pass, slew-rate limit, clamp to the action limits.

It sits between the policy and the robot, so it is written for the control tick: no allocation
per call, fixed work, and the clamp always applies, whatever else is switched off.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .settings import check, setting


@dataclass
class SmootherConfig:
    """Settings of the action smoother; all may change between ticks (see ``ActionSmoother.configure``)."""

    smoothing_enabled: bool = setting(True)
    """Low-pass filter and slew-limit the commands; when false only the clamp to the limits applies."""
    smoothing_cutoff_hz: float = setting(15.0, low=0.0, high=10000.0)
    """Cutoff of the first-order low-pass filter in Hz; 0 disables the filter."""
    slew_rate: float = setting(2000.0, low=0.0, high=1e9)
    """Largest change of any command component per second (action units/s); 0 disables the limit."""

    def __post_init__(self) -> None:
        check(self)


class ActionSmoother:
    """``y_t = clamp(y_{t-1} + clip(a·(x_t - y_{t-1}), ±min(slew, rate)·dt), low, high)``.

    ``a = 1 - exp(-2π·f_c·dt)`` is the exact discretization of a first-order low-pass with
    cutoff f_c. The first output after ``reset`` starts from ``initial`` (zero by default), so
    a command ramps up at the slew rate instead of jumping.
    """

    def __init__(self, config: SmootherConfig, dt: float, low: np.ndarray, high: np.ndarray,
                 rate_limit: np.ndarray | None = None) -> None:
        """``rate_limit``: the largest change per second of each command component, also when smoothing is off
        (a position command moves at most a joint's velocity limit); None: only ``slew_rate``."""
        self.dt = float(dt)
        self.low = np.asarray(low, dtype=np.float64).copy()
        self.high = np.asarray(high, dtype=np.float64).copy()
        if self.low.shape != self.high.shape or np.any(self.low > self.high):
            raise ValueError("action limits must have the same shape and low <= high")
        self._rate_step = np.full_like(self.low, math.inf) if rate_limit is None else (
            np.asarray(rate_limit, dtype=np.float64) * self.dt)
        if self._rate_step.shape != self.low.shape or np.any(self._rate_step <= 0.0):
            raise ValueError("rate limits must be positive, one per command component")
        self._rate_limited = rate_limit is not None
        self._output = np.zeros_like(self.low)
        self._step = np.zeros_like(self.low)
        self.configure(config)

    def configure(self, config: SmootherConfig) -> None:
        """Apply new settings; the filter state is kept, so a live change does not jump."""
        self.config = config
        cutoff_hz = config.smoothing_cutoff_hz
        self._alpha = 1.0 - math.exp(-2.0 * math.pi * cutoff_hz * self.dt) if cutoff_hz > 0 else 1.0
        slew_step = config.slew_rate * self.dt if config.slew_rate > 0 else math.inf
        self._max_step = np.minimum(self._rate_step, slew_step if config.smoothing_enabled else math.inf)
        self._min_step = -self._max_step

    def reset(self, initial: np.ndarray | None = None) -> None:
        self._output[:] = 0.0 if initial is None else np.clip(initial, self.low, self.high)

    @property
    def max_step(self) -> np.ndarray:
        """(A,) the largest change of each component in one call (inf: none)."""
        return self._max_step

    @property
    def output(self) -> np.ndarray:
        """The last command (a view: copy it to keep it)."""
        return self._output

    def __call__(self, action: np.ndarray) -> np.ndarray:
        """Smooth and clamp a finite ``action``; returns the internal output buffer."""
        if self.config.smoothing_enabled or self._rate_limited:
            np.subtract(action, self._output, out=self._step)
            if self.config.smoothing_enabled:
                self._step *= self._alpha
            _clip(self._step, self._min_step, self._max_step)
            self._output += self._step
        else:
            self._output[:] = action  # exactly the action, not y + (x - y)
        _clip(self._output, self.low, self.high)
        return self._output


def _clip(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
    """``np.clip(values, low, high, out=values)`` in two ufunc calls, without ``np.clip``'s Python layers (a few
    microseconds a call, which the control tick pays twice)."""
    np.maximum(values, low, out=values)
    np.minimum(values, high, out=values)
