"""Pieces shared by the package's nodes: parameter descriptors, start-up, a working MultiThreadedExecutor."""
from __future__ import annotations

import gc
import signal
import threading
from collections.abc import Callable
from typing import Any

import rclpy
import rclpy.executors
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.callback_groups import CallbackGroup
from rclpy.executors import (ConditionReachedException, Executor, ExternalShutdownException, ShutdownException,
                             TimeoutException)
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.subscription import MessageInfo, Subscription
from rclpy.task import Future

from .realtime import set_fifo_priority


def describe(description: str, read_only: bool = False, floats: tuple[float, float] | None = None,
             ints: tuple[int, int] | None = None) -> ParameterDescriptor:
    """A descriptor with a description, an optional inclusive range and the read-only flag."""
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    if floats is not None:
        descriptor.floating_point_range = [FloatingPointRange(from_value=floats[0], to_value=floats[1], step=0.0)]
    if ints is not None:
        descriptor.integer_range = [IntegerRange(from_value=ints[0], to_value=ints[1], step=1)]
    return descriptor


def declare_thread_priority(node: Node, default: int, what: str) -> int:
    """The read-only ``thread_priority`` parameter: SCHED_FIFO priority of ``what`` (0: normal scheduling)."""
    return node.declare_parameter("thread_priority", default, describe(
        f"SCHED_FIFO priority of {what} (0: normal scheduling); needs an rtprio limit or CAP_SYS_NICE, "
        "else a warning and normal scheduling", read_only=True, ints=(0, 99))).value


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


def one_line(error: Exception, limit: int = 400) -> str:
    """An error as the single line a node dies with (long library messages cut at ``limit`` characters)."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def init(args: list[str] | None) -> None:
    """``rclpy.init`` where SIGINT and SIGTERM raise KeyboardInterrupt in the spinning main thread.

    rclpy's own handlers shut the context down under running callbacks, whose next publish then
    raises; this way the node stops spinning first and shuts down in order (writing its outputs).
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


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
             until: Callable[[Node], Future] | None = None) -> int:
    """Build a node, spin it until ``until(node)`` completes (or forever) or SIGINT/SIGTERM, then
    ``on_exit(node)`` and an orderly shutdown. Call after ``init``. Returns the process exit code:
    1, after one fatal log line and no traceback, when building the node raises a startup error, or
    when ``until(node)`` completes with an exception."""
    try:
        node = make_node()
    except startup_errors as error:
        get_logger(name).fatal(one_line(error))
        rclpy.try_shutdown()
        return 1
    except KeyboardInterrupt:
        rclpy.try_shutdown()
        return 0
    spinner = executor(node)
    spinner.add_node(node)
    # Everything built at start (PyTorch, rclpy, models: 300k objects) moves out of the collector's
    # reach: a full collection among them stalls the process for 50-150 ms, now it walks only new ones.
    gc.freeze()
    exit_code = 0
    try:
        if until is None:
            spinner.spin()
        else:
            done = until(node)
            spinner.spin_until_future_complete(done)
            if done.done() and done.exception() is not None:  # failed in a thread of its own, already logged
                exit_code = 1
    except KeyboardInterrupt:
        pass
    finally:
        on_exit(node)
        spinner.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return exit_code
