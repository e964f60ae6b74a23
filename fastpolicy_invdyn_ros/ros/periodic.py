"""A periodic real-time loop in a thread of its own, as a robot driver's update loop runs. Imports no ROS module.

The control tick and the simulator's physics run here, not from an rclpy timer: a timer's callback
starts only once the executor's one thread is free (at 500 Hz joint states it often was running a
state's callback, since the tick is aligned just after the states arrive) and after the executor's
own bookkeeping (a 500 Hz timer with nothing else started 0.11 / 0.32 ms late at p50 / p99 here, and
cost 0.2 ms of CPU per call); a thread sleeping until each moment woke 0.05 / 0.16 ms late.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .realtime import fifo_priority


class PeriodicThread:
    """Calls ``tick(due_ns, now_ns)`` (the moment, and the clock when the thread woke for it) at every moment
    ``period_ns`` apart on ``clock_ns`` (the first one period after ``start``), at ``SCHED_FIFO`` ``priority``
    (0: normal scheduling; without permission it runs normally, which the process's own priority setting warns
    about). Moments missed while a tick ran late are skipped, as a timer skips them. An exception from ``tick``
    ends the loop and goes to ``on_error``."""

    def __init__(self, name: str, period_ns: int, tick: Callable[[int, int], None],
                 on_error: Callable[[Exception], None], priority: int = 0,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.name = name
        self.period_ns = period_ns
        self.priority = priority
        self._tick = tick
        self._on_error = on_error
        self._clock_ns = clock_ns
        self._stop = threading.Event()
        self._shift_ns = 0
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._stop.clear()
        self._shift_ns = 0
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the loop; once this returns no tick runs (called from a tick, that tick is the last)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def shift(self, shift_ns: int) -> None:
        """Move the moment after the next one ``shift_ns`` later (negative: earlier), and every one after it: the
        loop's phase moves (what an rcl timer does for a period set during its callback)."""
        self._shift_ns = shift_ns

    def _run(self) -> None:
        with fifo_priority(self.priority):
            due_ns = self._clock_ns() + self.period_ns
            while not self._stop.wait(max(0, due_ns - self._clock_ns()) * 1e-9):
                started_ns = self._clock_ns()
                next_ns = due_ns + self._shift_ns
                self._shift_ns = 0
                try:
                    self._tick(due_ns, started_ns)
                except Exception as error:  # noqa: BLE001 - the owner decides; a thread must not die silently
                    self._on_error(error)
                    return
                # The next moment, skipping those this tick started too late for (as an rcl timer does).
                due_ns = next_ns + self.period_ns * max(1, (started_ns - due_ns) // self.period_ns + 1)
