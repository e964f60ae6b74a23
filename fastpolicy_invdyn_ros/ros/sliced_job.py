"""Low-rate work cut into slices that a real-time loop runs one at a time between its periods. Imports no ROS module.

A job is a generator that yields between its slices. Run whole from a timer of its own, a job of a
millisecond or two makes a tick due meanwhile wait for it; run a slice per tick, once the tick's
command is out, it never does.
"""
from __future__ import annotations

from collections.abc import Iterator

_DONE = object()


class SlicedJob:
    """At most one job in progress: ``start`` it, ``step`` it a slice at a time, or ``finish`` it at once."""

    def __init__(self) -> None:
        self._job: Iterator[None] | None = None

    @property
    def pending(self) -> bool:
        """A job is started and not finished."""
        return self._job is not None

    def start(self, job: Iterator[None]) -> None:
        """Begin ``job``; what is left of the one before runs first, at once (its loop stopped, or came too rarely)."""
        self.finish()
        self._job = job

    def step(self) -> None:
        """Run the next slice of the job (nothing when none is pending)."""
        if self._job is not None and next(self._job, _DONE) is _DONE:
            self._job = None

    def finish(self) -> None:
        """Run what is left of the job at once."""
        job, self._job = self._job, None
        for _ in job or ():
            pass

    def drop(self) -> None:
        """Abandon the job where it is."""
        self._job = None
