"""SCHED_FIFO for the control process: every thread it has; threads and processes started later run normally."""
import subprocess
import sys
import textwrap

import pytest

from fastpolicy_invdyn_ros.ros.realtime import fifo_priority, set_fifo_priority

CHILD = textwrap.dedent("""
    import os, subprocess, sys, threading
    from fastpolicy_invdyn_ros.ros.realtime import set_fifo_priority
    early = threading.Thread(target=threading.Event().wait, args=(5,), daemon=True)
    early.start()
    try:
        set_fifo_priority(10)
    except PermissionError:
        print("EPERM"); sys.exit(0)
    def policy(thread_id):
        try:
            return os.sched_getscheduler(thread_id) & ~os.SCHED_RESET_ON_FORK
        except ProcessLookupError:  # ended meanwhile
            return os.SCHED_FIFO
    # Listed before the later thread starts: a joined thread may linger in /proc/self/task a moment.
    threads = [policy(int(t)) for t in os.listdir("/proc/self/task")]
    late = []
    later = threading.Thread(target=lambda: late.append(os.sched_getscheduler(0)))
    later.start(); later.join()
    child = subprocess.run([sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"],
                           capture_output=True, text=True).stdout.strip()
    print(set(threads) == {os.SCHED_FIFO}, len(threads) >= 2, late[0] == os.SCHED_OTHER,
          child == str(os.SCHED_OTHER))
""")


def checks_in_a_child(code: str) -> list[str]:
    """What ``code`` prints, run in a fresh process (its scheduling changes stay there); skips without permission."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    if result.stdout.strip() == "EPERM":
        pytest.skip("no permission for SCHED_FIFO here")
    return result.stdout.split()


def test_existing_threads_run_fifo_and_later_threads_and_children_normally():
    assert checks_in_a_child(CHILD) == ["True"] * 4


def test_priority_out_of_range_is_refused():
    with pytest.raises(ValueError, match="1-99"):
        set_fifo_priority(0)


BLOCK = textwrap.dedent("""
    import os
    from fastpolicy_invdyn_ros.ros.realtime import fifo_priority
    with fifo_priority(0) as unchanged:
        normal = os.sched_getscheduler(0)
    with fifo_priority(20) as fifo:
        inside = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
    if not fifo:
        print("EPERM"); raise SystemExit(0)
    print(unchanged is False, normal == os.SCHED_OTHER, inside == (os.SCHED_FIFO, 20),
          os.sched_getscheduler(0) == os.SCHED_OTHER)
""")


def test_a_block_runs_fifo_and_the_thread_runs_normally_again_after_it():
    assert checks_in_a_child(BLOCK) == ["True"] * 4


def test_a_block_priority_out_of_range_is_refused():
    with pytest.raises(ValueError, match="0-99"), fifo_priority(100):
        pass
