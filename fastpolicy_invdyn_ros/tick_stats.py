"""Timing of the control tick, recorded without allocation and summarized for diagnostics."""
from __future__ import annotations

import numpy as np

from .metrics import percentiles_ms


class TickStats:
    """Tick latencies in a preallocated ring buffer, the tick count and the late ticks.

    ``record`` is called by the tick (fixed work, no allocation); the summaries are for a reader
    at a low rate (diagnostics), which may run in another thread: a race costs one stale sample.
    """

    def __init__(self, period_s: float, capacity: int) -> None:
        self.period_s = period_s
        self._latencies = np.zeros(capacity)
        self.count = 0
        """Ticks recorded since start."""
        self.late = 0
        """Ticks that started more than one period late (more than two periods after the previous one)."""
        self._last_start = np.nan

    def record(self, started_s: float, finished_s: float) -> None:
        self._latencies[self.count % len(self._latencies)] = finished_s - started_s
        if started_s - self._last_start > 2.0 * self.period_s:
            self.late += 1
        self._last_start = started_s
        self.count += 1

    def latency_ms(self) -> dict[str, float]:
        """p50 and p99 tick latency (ms) over the last ``capacity`` ticks."""
        return percentiles_ms(self._latencies[: min(self.count, len(self._latencies))].copy())
