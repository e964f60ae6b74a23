"""Reading subscriptions without the executor, and a node's exit code (real rclpy over DDS, in a private domain)."""
import signal
import threading
import time

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.task import Future
from std_msgs.msg import Float64MultiArray

from fastpolicy_invdyn_ros.ros.processes import private_domain_id, use_domain
from fastpolicy_invdyn_ros.ros.common import PolledGroup, drain, run_node, take


@pytest.fixture
def node():
    use_domain(private_domain_id())
    rclpy.init()
    node = Node("ros_common_test")
    yield node
    node.destroy_node()
    rclpy.try_shutdown()


def publish_and_wait(node: Node, values: list[float], subscription) -> None:
    publisher = node.create_publisher(Float64MultiArray, subscription.topic_name, 10)
    deadline = time.monotonic() + 10.0
    while subscription.get_publisher_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    for value in values:
        publisher.publish(Float64MultiArray(data=[value]))
    time.sleep(0.3)  # into the subscription's queue (same process: well under this)


def test_a_message_taken_from_an_executor_served_subscription_is_not_handed_to_its_callback_again(node):
    received = []
    subscription = node.create_subscription(Float64MultiArray, "numbers", lambda msg: received.append(msg.data[0]), 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    publish_and_wait(node, [1.0], subscription)
    message, info = take(subscription)
    assert message.data[0] == 1.0 and info["received_timestamp"] >= info["source_timestamp"] > 0
    assert take(subscription) is None
    executor.spin_once(timeout_sec=0.3)
    assert received == []
    executor.shutdown()


def test_the_executor_never_runs_a_polled_subscription_and_drain_reads_its_queue_in_order(node):
    received = []
    subscription = node.create_subscription(Float64MultiArray, "numbers", lambda msg: received.append(msg.data[0]), 10,
                                            callback_group=PolledGroup())
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    publish_and_wait(node, [1.0, 2.0, 3.0], subscription)
    executor.spin_once(timeout_sec=0.3)
    assert received == []
    drain(subscription)
    assert received == [1.0, 2.0, 3.0]
    drain(subscription)
    assert received == [1.0, 2.0, 3.0]
    executor.shutdown()


def test_a_node_whose_future_fails_in_another_thread_exits_with_1():
    use_domain(private_domain_id())
    failed = Future()
    fail = threading.Timer(0.2, lambda: failed.set_exception(RuntimeError("physics stopped")))

    def make_node() -> Node:
        fail.start()
        return Node("failing_node")

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = run_node("failing_node", make_node, (), lambda _: SingleThreadedExecutor(), lambda _: None,
                        until=lambda _: failed)
    finally:  # run_node keeps its stop handlers for the rest of the process: give pytest its own back
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert code == 1 and not rclpy.ok()
