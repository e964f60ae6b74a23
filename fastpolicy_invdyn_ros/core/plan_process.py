"""``PlanProcess``: the planner in a process of its own, behind the same interface as ``PlanWorker``.

A planner thread shares the interpreter lock with the control tick: each of its many small
PyTorch calls can keep the tick waiting, which shows as late ticks on a 100 Hz controller. In a
child process the planner runs on its own core and the tick only pays for sending a request and
receiving a plan (a few kB of numbers through a pipe, read without blocking).

The child loads the planner from the checkpoint itself, its networks in the runtime asked for
(``runtime``; it reports which it chose and why), started with ``spawn``: forking a process with
middleware threads is unsafe. Tensors cross the pipe as numpy arrays, so nothing
depends on PyTorch's shared-memory tensor passing.
"""
from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

import numpy as np
import torch

from .checkpoint import load_planner
from .planning import Plan, Planning, PlanningConfig, PlanRequest
from .runtime import RuntimeChoice, load_planner_networks
from .signals import ignore_stop_signals, stop_signals_blocked

START_TIMEOUT_S = 120.0
"""Longest wait for the child to import PyTorch, load the planner and plan once."""
CLOSE_TIMEOUT_S = 5.0
EXITED = "the planner process exited"


@dataclass
class _Request:
    """A ``PlanRequest`` in numpy, tagged with the worker generation it was made in."""

    generation: int
    history: np.ndarray
    goal: np.ndarray | None
    origin_tick: int
    previous: tuple[np.ndarray, int | None, int] | None
    """The plan to warm start from: its states, chosen sample and origin tick."""
    config: PlanningConfig


@dataclass
class _Reply:
    generation: int
    states: np.ndarray | None
    chosen: int | None
    origin_tick: int
    seconds: float
    error: str | None


def _numpy(tensor: torch.Tensor | None) -> np.ndarray | None:
    return None if tensor is None else tensor.detach().cpu().numpy()


def _serve(conn: Connection, planner_path: str, device: str, runtime: str) -> None:
    """The child: load, warm up, then turn requests into replies until told to stop or the parent is gone.

    It ignores SIGINT and SIGTERM: a Ctrl-C reaches the whole process group, and the parent, which
    stops it through the pipe, may still be sending its last commands. The parent's death closes the
    pipe, which ends it too (no orphan planner after a ``kill -9`` of the node).
    """
    ignore_stop_signals()
    try:
        torch.set_num_threads(1)  # one core for the planner; the tick has the other
        planner = load_planner(planner_path, device)
        networks, choice = load_planner_networks(planner, planner_path, runtime, device)
        planning = Planning(planner, networks)
    except Exception as error:  # noqa: BLE001 - reported to the parent as its start-up error
        conn.send(f"{type(error).__name__}: {error}")
        return
    try:
        conn.send(choice)
        while (request := conn.recv()) is not None:
            conn.send(_plan(planning, request, device))
    except (EOFError, OSError):  # the parent closed the pipe or died
        return


def _plan(planning: Planning, request: _Request, device: str) -> _Reply:
    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(device)

    started = time.perf_counter()
    try:
        previous = None
        if request.previous is not None:
            states, chosen, origin_tick = request.previous
            previous = Plan(tensor(states), chosen, origin_tick, 0.0)
        goal = None if request.goal is None else tensor(request.goal)
        plan = planning(PlanRequest(tensor(request.history), goal, request.origin_tick, previous, request.config))
        return _Reply(request.generation, _numpy(plan.states), plan.chosen, plan.origin_tick, plan.seconds, None)
    except Exception as error:  # noqa: BLE001 - any planner failure must end in a safe command
        return _Reply(request.generation, None, None, request.origin_tick, time.perf_counter() - started,
                      f"planner failed: {type(error).__name__}: {error}")


class PlanProcess:
    """Plans in a child process. ``submit`` and ``latest`` never wait for planning.

    At most one request is in the child at a time; one submitted meanwhile waits here, and a
    newer one replaces it. Plans arrive on the device of ``device``. Raises RuntimeError at
    start if the child cannot load the planner (or its networks in ``runtime``: ``runtime.RUNTIMES``).
    """

    def __init__(self, planner_path: str, device: torch.device | str = "cpu", runtime: str = "torch") -> None:
        self._device = torch.device(device)
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(target=_serve, args=(child_conn, str(planner_path), str(self._device), runtime),
                                        name="plan_process", daemon=True)
        with stop_signals_blocked():  # until the child ignores them itself
            self._process.start()
        child_conn.close()
        if not self._conn.poll(START_TIMEOUT_S):
            self.close()
            raise RuntimeError(f"the planner process did not start within {START_TIMEOUT_S:.0f} s")
        try:
            started = self._conn.recv()
        except EOFError:
            started = f"the planner process exited with code {self._process.exitcode}"
        if isinstance(started, str):
            self.close()
            raise RuntimeError(f"planner process: {started}")
        self.runtime: RuntimeChoice = started
        """Which runtime the child runs the planner's networks in, and why."""
        self._generation = 0
        self._in_flight = False
        self._waiting: PlanRequest | None = None
        self._latest: Plan | None = None
        self._error: str | None = None

    @property
    def pid(self) -> int | None:
        """Process id of the planner process."""
        return self._process.pid

    def submit(self, request: PlanRequest) -> None:
        self._waiting = request
        self._send_waiting()

    @property
    def pending(self) -> bool:
        """A request waits or is being planned (as of the last ``latest``)."""
        return self._in_flight or self._waiting is not None

    def latest(self) -> tuple[Plan | None, str | None]:
        """The newest finished plan and the error of the newest failed attempt (None after a success)."""
        self._receive()
        return self._latest, self._error

    def reset(self) -> None:
        self._generation += 1  # a plan still in the child is discarded when it lands
        self._waiting, self._latest, self._error = None, None, None

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._process.join(CLOSE_TIMEOUT_S)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(CLOSE_TIMEOUT_S)
        self._conn.close()

    def _send_waiting(self) -> None:
        if self._in_flight or self._waiting is None:
            return
        request, self._waiting = self._waiting, None
        previous = request.previous
        try:
            self._conn.send(_Request(self._generation, _numpy(request.history), _numpy(request.goal),
                                     request.origin_tick,
                                     None if previous is None else
                                     (_numpy(previous.states), previous.chosen, previous.origin_tick),
                                     request.config))
            self._in_flight = True
        except OSError:  # the child's end of the pipe is closed
            self._error = EXITED

    def _receive(self) -> None:
        """Take every reply that has arrived (never blocks), then send a waiting request.

        A dead child shows as the end of the pipe (here or in ``_send_waiting``): no per-tick check.
        """
        try:
            while self._in_flight and self._conn.poll():
                self._in_flight = False
                self._accept(self._conn.recv())
        except (EOFError, OSError):
            self._error = EXITED
            return
        self._send_waiting()

    def _accept(self, reply: _Reply) -> None:
        if reply.generation != self._generation:
            return
        if reply.states is not None and (self._latest is None or reply.origin_tick >= self._latest.origin_tick):
            self._latest = Plan(torch.from_numpy(reply.states).to(self._device), reply.chosen, reply.origin_tick,
                                reply.seconds)
        self._error = reply.error
