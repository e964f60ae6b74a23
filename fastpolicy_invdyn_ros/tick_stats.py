"""Timing of the control tick, recorded without allocation and summarized for diagnostics."""
from __future__ import annotations

import numpy as np

from .metrics import percentiles_ms


class TickStats:
    """Tick latencies and the age of the state each tick used, in preallocated ring buffers; the tick
    count and the late ticks.

    ``record`` is called by the tick (fixed work, no allocation); the summaries are for a reader
    at a low rate (diagnostics), which may run in another thread: a race costs one stale sample.
    """

    def __init__(self, period_s: float, capacity: int) -> None:
        self.period_s = period_s
        self._latencies = np.zeros(capacity)
        self._state_ages = np.full(capacity, np.nan)
        self.count = 0
        """Ticks recorded since start."""
        self.late = 0
        """Ticks that started more than one period late (more than two periods after the previous one)."""
        self._last_start = np.nan

    def record(self, started_s: float, finished_s: float, state_age_s: float = np.nan) -> None:
        """One tick: its start and end (``perf_counter``) and how old its state was at the start (NaN: none)."""
        slot = self.count % len(self._latencies)
        self._latencies[slot] = finished_s - started_s
        self._state_ages[slot] = state_age_s
        if started_s - self._last_start > 2.0 * self.period_s:
            self.late += 1
        self._last_start = started_s
        self.count += 1

    def latency_ms(self) -> dict[str, float]:
        """p50 and p99 tick latency (ms) over the last ``capacity`` ticks."""
        return percentiles_ms(self._latencies[: min(self.count, len(self._latencies))].copy())

    def state_age_ms(self) -> dict[str, float]:
        """p50 and p99 (ms) of the state's age at the tick (tick start minus the state's stamp) over the
        last ``capacity`` ticks that had a state: transport, and the wait for the tick."""
        ages = self._state_ages[: min(self.count, len(self._state_ages))]
        return percentiles_ms(ages[np.isfinite(ages)])
