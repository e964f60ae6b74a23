"""Pacing a simulation against a wall clock: which physics steps are due, and the moment each stands for.

A simulator driven by a periodic timer cannot count on one step per tick: a busy machine delays
ticks, and a simulation that runs a step whenever a tick comes drifts ahead of the clock (a tick
late by more than half a period runs a second step) or behind it. Here a step runs only once its
moment has come, a late tick catches up with several, and a simulation too far behind gives the
time up (a gap in the stamps) rather than stamping states long after the moment they stand for.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StepPacer:
    """Steps of ``step_ns`` (wall-clock nanoseconds per step) paced against a clock in nanoseconds."""

    step_ns: int
    """Wall-clock duration of one step (the physics step over the real-time factor)."""
    max_catch_up: int
    """Most steps one tick may run to catch up after being late."""
    max_lag_ns: int
    """Lag behind the clock beyond which the time is given up (the next stamps jump ahead)."""
    origin_ns: int = 0
    """The clock's moment of step 0; moved ahead by any time given up."""

    def start(self, next_step_ns: int, steps_done: int) -> None:
        """Let the next step stand for the moment ``next_step_ns``: a timer tick's scheduled moment (ticks
        come at or after it, so each punctual tick finds exactly one step due)."""
        self.origin_ns = next_step_ns - (steps_done + 1) * self.step_ns

    def stamp_ns(self, steps_done: int) -> int:
        """The clock's moment the state after ``steps_done`` steps stands for."""
        return self.origin_ns + steps_done * self.step_ns

    def due(self, now_ns: int, steps_done: int) -> int:
        """Steps to run now (at most ``max_catch_up``); none stands for a moment still to come."""
        return max(0, min(self.max_catch_up, (now_ns - self.origin_ns) // self.step_ns - steps_done))

    def give_up_lag(self, now_ns: int, steps_done: int, next_step_ns: int) -> None:
        """After a tick's steps: if more than ``max_lag_ns`` behind, give the time up and ``start`` again."""
        if now_ns - self.stamp_ns(steps_done) > self.max_lag_ns:
            self.start(next_step_ns, steps_done)
