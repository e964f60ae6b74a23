"""The machine's own stalls, watched while a benchmark runs, to tell a late tick's cause.

On a VM the host takes a core away now and then (here up to 18 ms, 1-105 times in 30 s); no thread
inside runs then, whatever its priority. One watcher process per CPU, pinned to it at SCHED_FIFO 99
(above every thread of the stack), wakes every ``period_s`` and records how late it woke: a
wake-up late by more than ``STALL_S`` means that core was not the guest's to give. A tick late at
such a moment was late for the machine; one late with every watcher on time was late for the code.
The watchers cost each core a wake-up (tens of microseconds) per period.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

PRIORITY = 99
"""SCHED_FIFO priority of the watchers: above everything they watch."""
STALL_S = 0.5e-3
"""A watcher's wake-up this much late is a stall of its core (on time they wake 0.05 / 0.1 / 0.2 ms late at
p50 / p99 / p99.9 here)."""
START_DELAY_S = 0.05
"""Time to allow the watchers between ``start`` and their first due moment."""
START_ALLOWANCE_S = 30.0
"""Longest a watcher process may take to start, or to report back after its watch."""


@dataclass
class CoreWatch:
    """One core's watcher: when each wake-up was due and how late it came."""

    cpu: int
    due_s: np.ndarray
    """Wall-clock (``time.time``) moments the watcher was due, every period."""
    lateness_s: np.ndarray
    """How late it woke for each."""
    realtime: bool
    """It ran at SCHED_FIFO (False: no permission, so it waited like any thread and proves nothing)."""

    def stalls(self) -> np.ndarray:
        """The lateness of the wake-ups late by more than ``STALL_S``."""
        return self.lateness_s[self.lateness_s > STALL_S]


def _watch(cpu: int, period_s: float, conn: Connection) -> None:
    os.sched_setaffinity(0, {cpu})
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(PRIORITY))
        realtime = True
    except PermissionError:
        realtime = False
    conn.send(realtime)
    start_s, count = conn.recv()
    due, woke = start_s + period_s * np.arange(count), np.empty(count)  # allocated before watching
    for i in range(count):
        time.sleep(max(0.0, due[i] - time.time()))
        woke[i] = time.time()
    conn.send((due, woke - due))
    conn.close()


class StallWatch:
    """Watchers on every CPU, started (a new interpreter each: 1-2 s) and ready when this returns; ``start`` sets
    them watching, ``result`` waits for what they saw. Raises RuntimeError if a watcher does not start. As a
    context manager, it stops any watcher left on exit."""

    def __init__(self, period_s: float = 1e-3) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no lock or thread of this one
        self.period_s = period_s
        self._end_s = 0.0
        self._watchers = []
        for cpu in sorted(os.sched_getaffinity(0)):
            conn, child_conn = context.Pipe()
            process = context.Process(target=_watch, args=(cpu, period_s, child_conn), daemon=True,
                                      name=f"stall_watch_{cpu}")
            process.start()
            child_conn.close()
            self._watchers.append((cpu, process, conn))
        self._realtime = [self._receive(cpu, process, conn, START_ALLOWANCE_S)
                          for cpu, process, conn in self._watchers]

    def __enter__(self) -> StallWatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for _, process, conn in self._watchers:
            process.kill()
            process.join()
            conn.close()

    def start(self, start_s: float, duration_s: float) -> None:
        """Watch from ``start_s`` (wall clock, ``time.time``) for ``duration_s``."""
        self._end_s = start_s + duration_s
        for _, _, conn in self._watchers:
            conn.send((start_s, max(1, round(duration_s / self.period_s))))

    def result(self) -> list[CoreWatch]:
        """Each core's watch, once over. Raises RuntimeError if a watcher did not report."""
        cores = []
        for (cpu, process, conn), realtime in zip(self._watchers, self._realtime):
            due, lateness = self._receive(cpu, process, conn, max(0.0, self._end_s - time.time()) + START_ALLOWANCE_S)
            process.join()
            cores.append(CoreWatch(cpu, due, lateness, realtime))
        return cores

    @staticmethod
    def _receive(cpu: int, process: multiprocessing.Process, conn: Connection, timeout_s: float) -> Any:
        if not conn.poll(timeout_s):
            process.kill()
            raise RuntimeError(f"the stall watcher of CPU {cpu} did not answer in {timeout_s:.0f} s")
        return conn.recv()


def worst_stall(cores: list[CoreWatch], start_s: float, end_s: float) -> float:
    """The latest any watcher woke (s) among its wake-ups between ``start_s`` and ``end_s`` (due by the end, woken
    after the start): how long the machine held a core during that interval."""
    worst = 0.0
    for core in cores:
        during = (core.due_s <= end_s) & (core.due_s + core.lateness_s >= start_s)
        if during.any():
            worst = max(worst, float(core.lateness_s[during].max()))
    return worst
