"""Pieces shared by the package's nodes: running one as a process, real-time threads, polled
subscriptions, a working MultiThreadedExecutor."""
from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import rclpy
import rclpy.executors
from rclpy.callback_groups import CallbackGroup
from rclpy.executors import (ConditionReachedException, Executor, ExternalShutdownException, ShutdownException,
                             TimeoutException)
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.subscription import MessageInfo, Subscription
from rclpy.task import Future

from ..core.errors import one_line
from ..core.signals import StopRequest
from .realtime import set_fifo_priority

NodeType = TypeVar("NodeType", bound="Node")

SPIN_PERIOD_S = 0.1
"""Longest a stop request waits for the executor to wake up (timers and messages wake it far more often)."""


def apply_thread_priority(node: Node, priority: int) -> None:
    """Real-time priority for the threads the process has now (``realtime.set_fifo_priority``), or a warning."""
    if priority == 0:
        return
    try:
        set_fifo_priority(priority)
    except OSError as error:
        node.get_logger().warning(f"no real-time priority ({error.strerror}): on a busy machine it runs late; "
                                  f"see the README on rtprio, or set thread_priority 0")


class PolledGroup(CallbackGroup):
    """A callback group no executor runs: a real-time loop reads its subscriptions with ``drain``.

    rclcpp's way is a callback group not added to any executor and ``Subscription::take``; here the
    executor never wakes for these messages, so the loop neither waits for the executor's thread
    nor shares the interpreter lock with it.
    """

    def can_execute(self, entity: Any) -> bool:
        return False

    def beginning_execution(self, entity: Any) -> bool:
        return False

    def ending_execution(self, entity: Any) -> None:
        pass


def take(subscription: Subscription) -> tuple[Any, MessageInfo] | None:
    """The oldest message waiting for a subscription and its info (None: none), without the executor.

    Safe on a subscription the executor also serves: a message taken here is not handed to its callback.
    """
    with subscription.handle:
        return subscription.handle.take_message(subscription.msg_type, subscription.raw)


def drain(subscription: Subscription) -> None:
    """Run the callback of a ``PolledGroup`` subscription on every message waiting for it, oldest first."""
    while (taken := take(subscription)) is not None:
        subscription.callback(taken[0])


class MultiThreadedExecutor(rclpy.executors.MultiThreadedExecutor):
    """rclpy's MultiThreadedExecutor without its busy loop (rclpy issue 1452, fixed upstream in rclpy 10).

    There, a callback submitted to the thread pool but not started yet is yielded again by the next
    wait, which then returns at once: the spinning thread loops holding the GIL and the workers
    cannot start. At 500 Hz input this made a 100 Hz timer run at 40-90 Hz. Here the spinning
    thread waits until the worker has started the callback before it waits for more work.
    """

    def _spin_once_impl(self, timeout_sec: float | None = None,
                        wait_condition: Callable[[], bool] = lambda: False) -> None:
        try:
            handler, _, _ = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except (ExternalShutdownException, ShutdownException, TimeoutException, ConditionReachedException):
            return
        started = threading.Event()

        def run() -> None:
            started.set()
            handler()

        self._executor.submit(run)
        self._futures.append(handler)
        started.wait()
        for future in self._futures[:]:
            if future.done():
                self._futures.remove(future)
                future.result()  # raise any exceptions


def run_node(name: str, make_node: Callable[[], Node], startup_errors: tuple[type[Exception], ...],
             executor: Callable[[Node], Executor], on_exit: Callable[[Node], None],
             until: Callable[[Node], Future] | None = None, args: list[str] | None = None) -> int:
    """A node as a process: ``rclpy.init(args)``, build it, spin it until ``until(node)`` completes (or
    forever) or a stop signal, then ``on_exit(node)`` and an orderly shutdown. Returns the exit code.

    SIGINT and SIGTERM, however many and whenever they come, are one request to stop
    (``core.signals.StopRequest``; once the node is down they are ignored until the process has
    exited): the loop ends, ``on_exit`` runs uninterrupted (a node sends its safe
    command and stops its children there) and the process exits 0, silently. rclpy's own
    handlers are off: they would shut the context down under running callbacks. Exit code 1, after
    one fatal log line and no traceback, when building the node raises a startup error, or when
    ``until(node)`` completes with an exception (logged where it happened).
    """
    stop = StopRequest().install()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = make_node()
    except startup_errors as error:
        get_logger(name).fatal(one_line(error))
        rclpy.try_shutdown()
        stop.ignore_from_now_on()
        return 1
    spinner = executor(node)
    spinner.add_node(node)
    # Everything built at start (PyTorch, rclpy, models: 300k objects) moves out of the collector's
    # reach: a full collection among them stalls the process for 50-150 ms, now it walks only new ones.
    gc.freeze()
    done = until(node) if until is not None else None
    if done is not None:  # it may complete in another thread: a guard condition's (empty) callback ends the wait
        wake = node.create_guard_condition(lambda: None)
        done.add_done_callback(lambda _: wake.trigger())
    try:
        while not stop.requested and rclpy.ok() and not (done is not None and done.done()):
            spinner.spin_once(timeout_sec=SPIN_PERIOD_S)
    finally:
        on_exit(node)
        spinner.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        stop.ignore_from_now_on()
    failed = done is not None and done.done() and done.exception() is not None
    return 1 if failed else 0


@contextmanager
def spinning(make_node: Callable[[], NodeType]) -> Iterator[NodeType]:
    """rclpy in this process with one node spinning in a background thread (an observer of other processes'
    nodes: the demo's monitor, a test's probe); on exit the spinning stops, then the executor, the node and rclpy
    are shut down."""
    rclpy.init()
    node = make_node()
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(timeout_sec=SPIN_PERIOD_S)

    # Not ``executor.spin``: its ``shutdown`` from another thread destroys the guard condition under a callback
    # still in flight, which then raises in the spinning thread (rclpy 10).
    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        yield node
    finally:
        stop.set()
        spinner.join()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
