"""SIGINT and SIGTERM as one request to stop, however often they come.

Ctrl-C in a terminal or under ``ros2 launch`` sends SIGINT to the whole process group; launch then
sends its own SIGINT to each process it started, and SIGTERM a few seconds later. A process that
raised KeyboardInterrupt on each of them would be interrupted again in the middle of its orderly
shutdown (joining a child, writing a file, inside a middleware call). Here the first signal only
records the request; the process's loop sees it and stops in order, and later ones change nothing.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Set by SIGINT or SIGTERM once ``install``ed (in the main thread); read by the process's loop."""

    def __init__(self) -> None:
        self.signal: int | None = None
        """The first stop signal received (None: none yet)."""
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def request(self, signum: int = signal.SIGINT) -> None:
        """Ask to stop (what a signal does); a second request changes nothing."""
        if self.signal is None:
            self.signal = signum

    def _handle(self, signum: int, frame: object) -> None:
        self.request(signum)

    def install(self) -> StopRequest:
        """Take over SIGINT and SIGTERM (main thread only; elsewhere nothing happens)."""
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        return self

    def restore(self) -> None:
        """Give SIGINT and SIGTERM back their handlers from before ``install``."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def ignore_from_now_on(self) -> None:
        """For a process whose orderly shutdown is done: ignore SIGINT and SIGTERM until it has exited.

        Python puts the default handlers back while the interpreter finalizes (not an ignored signal's), so a
        late second Ctrl-C there would kill the process with -SIGINT instead of letting it exit 0.
        """
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)


@contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """SIGINT and SIGTERM blocked in this thread for the block: a child started in it is born with them
    blocked (a signal mask survives fork and exec), so a Ctrl-C to the process group during the child's
    start stays pending until it calls ``ignore_stop_signals``. Works in any thread."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def ignore_stop_signals() -> None:
    """For a child its parent stops through its own channel: ignore SIGINT and SIGTERM (pending ones too)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
