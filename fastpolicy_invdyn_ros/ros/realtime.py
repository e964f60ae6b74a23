"""Real-time scheduling for the control process (Linux ``SCHED_FIFO``), as ros2_control's controller manager does.

On a machine shared with the robot driver, a planner and a simulator, a normally scheduled tick
waits for the CPU behind them for several milliseconds at a time. Under ``SCHED_FIFO`` the
node's threads run as soon as they are ready. Threads and processes started later (a planner
process, an executor's worker threads) get the normal policy again, so they never compete with
the tick: call it once the process's real-time threads exist.

Permission: root, ``CAP_SYS_NICE``, or an ``rtprio`` limit for the user
(``/etc/security/limits.conf``: ``@realtime - rtprio 99``, then add the user to ``realtime``).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


def set_fifo_priority(priority: int) -> None:
    """Every thread this process has now at ``SCHED_FIFO`` ``priority`` (1-99); later ones run normally.

    Raises OSError (e.g. EPERM) when not permitted; nothing is changed then for the first thread.
    """
    if not 1 <= priority <= 99:
        raise ValueError(f"priority must be in 1-99, got {priority}")
    policy = os.SCHED_FIFO | os.SCHED_RESET_ON_FORK
    for thread_id in sorted(int(name) for name in os.listdir("/proc/self/task")):
        try:
            os.sched_setscheduler(thread_id, policy, os.sched_param(priority))
        except ProcessLookupError:
            pass  # the thread ended meanwhile


@contextlib.contextmanager
def fifo_priority(priority: int) -> Iterator[bool]:
    """The calling thread at ``SCHED_FIFO`` ``priority`` (0: unchanged) until the block ends, then as before.

    Yields whether it runs at that priority (False without permission: it runs normally then)."""
    if priority == 0:
        yield False
        return
    if not 1 <= priority <= 99:
        raise ValueError(f"priority must be in 0-99, got {priority}")
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        yield False
        return
    try:
        yield True
    finally:
        os.sched_setscheduler(0, policy, param)
