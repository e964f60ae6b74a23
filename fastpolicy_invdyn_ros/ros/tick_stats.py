"""Timing of the control tick, recorded without allocation and summarized for diagnostics."""
from __future__ import annotations

import numpy as np

from ..core.metrics import percentiles_ms


class RecentValues:
    """The last ``capacity`` values added, in a preallocated ring: ``add`` does fixed work, no allocation."""

    def __init__(self, capacity: int) -> None:
        self._ring = np.full(capacity, np.nan)
        self._added = 0

    def add(self, value: float) -> None:
        """One value (NaN: a slot with nothing to report)."""
        self._ring[self._added % len(self._ring)] = value
        self._added += 1

    def values(self) -> np.ndarray:
        """The finite values among the last ``capacity`` added (a copy, not in order)."""
        return self._ring[np.isfinite(self._ring)]

    def clear(self) -> None:
        self._ring[:] = np.nan
        self._added = 0


class TickStats:
    """Tick latencies, how late each tick started and the age of the state it used, in preallocated ring
    buffers; the tick count and the late ticks.

    ``record`` is called by the tick (fixed work, no allocation); the summaries are for a reader
    at a low rate (diagnostics), which may run in another thread: a race costs one stale sample.
    """

    def __init__(self, period_s: float, capacity: int) -> None:
        self.period_s = period_s
        self._latencies = RecentValues(capacity)
        self._state_ages = RecentValues(capacity)
        self._start_delays = RecentValues(capacity)
        self.count = 0
        """Ticks recorded since start."""
        self.late = 0
        """Ticks that started more than one period late (more than two periods after the previous one)."""
        self._last_start = np.nan

    def record(self, started_s: float, finished_s: float, state_age_s: float = np.nan,
               start_delay_s: float = np.nan) -> None:
        """One tick: its start and end (``perf_counter``), how old its state was at the start (NaN: none) and how
        long after its moment it started (NaN: unknown)."""
        self._latencies.add(finished_s - started_s)
        self._state_ages.add(state_age_s)
        self._start_delays.add(start_delay_s)
        if started_s - self._last_start > 2.0 * self.period_s:
            self.late += 1
        self._last_start = started_s
        self.count += 1

    def latency_ms(self) -> dict[str, float]:
        """p50 and p99 tick latency (ms) over the last ``capacity`` ticks."""
        return percentiles_ms(self._latencies.values())

    def start_delay_ms(self) -> dict[str, float]:
        """p50, p99 and max (ms) of how long after its moment each of the last ``capacity`` ticks started: the
        operating system's wake-up and the wait for the interpreter lock, what cyclictest measures of a real-time
        setup."""
        delays = self._start_delays.values()
        return {**percentiles_ms(delays), "max": float(delays.max() * 1e3) if len(delays) else np.nan}

    def state_age_ms(self) -> dict[str, float]:
        """p50 and p99 (ms) of the state's age at the tick (tick start minus the state's stamp) over the
        last ``capacity`` ticks that had a state: transport, and the wait for the tick."""
        return percentiles_ms(self._state_ages.values())
