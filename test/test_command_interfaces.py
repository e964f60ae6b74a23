"""Each command interface over DDS: the node with models of a position or velocity interface publishes
the controller's message on its topic, holds every command within the robot's limits (a position moves
at most the joint's velocity limit per period), and on stale input sends the interface's safe command:
the measured position held, or zero velocity.

The models are briefly trained on the simulated arm's demonstrations relabelled as a position- or
velocity-controlled arm's (the command is the next measured position or velocity): finite, not good.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from ros_harness import JOINTS, POSITIONS, TEST_PARAMETERS, FakeRobot, RobotSession, controlling
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from fastpolicy_invdyn_ros.core.data import Episodes, save_episodes
from fastpolicy_invdyn_ros.core.training import TrainConfig, train
from fastpolicy_invdyn_ros.ros.processes import (controller_name, policy_command, private_domain_id,
                                               ros_environment, start, stop_process, use_domain, wait_for)
from fastpolicy_invdyn_ros.sim import ArmSim

ARM = ArmSim().description()
DT = ARM.control_dt
STARTUP_S = 60.0


def relabelled(demos: Episodes, interface: str) -> Episodes:
    """The demonstrations as a robot of ``interface`` would record them: each command is the next state's
    position (or velocity), the last of an episode repeating its own."""
    joints = len(demos.joint_names)
    part = slice(0, joints) if interface == "position" else slice(joints, 2 * joints)
    following = np.minimum(np.arange(len(demos.states)) + 1, np.repeat(demos.episode_ends - 1,
                                                                       np.diff(demos.episode_ends, prepend=0)))
    limits = ((ARM.position_low, ARM.position_high) if interface == "position"
              else ([-v for v in ARM.velocity_limit], ARM.velocity_limit))
    robot = replace(ARM, command_interface=interface, command_low=list(limits[0]), command_high=list(limits[1]))
    return replace(demos, actions=demos.states[following, part], robot=robot)


@pytest.fixture(scope="module", params=["position", "velocity", "position trajectory"])
def node(request, demos: Episodes, tmp_path_factory) -> Iterator[tuple[str, str, FakeRobot, list]]:
    """(interface, command output, the fake robot, the controller messages received) for a running node."""
    interface, _, output = request.param.partition(" ")
    output = output or "forward"
    directory = tmp_path_factory.mktemp(interface)
    save_episodes(directory / "demos.npz", relabelled(demos, interface))
    common = dict(data=[str(directory / "demos.npz")], output_dir=str(directory), steps=100, batch_size=64,
                  progress=False, eval_every=1000, checkpoint_every=1000)
    models = {"planner_model_path": train(TrainConfig(model_type="planner", **common)).final_path,
              "invdyn_model_path": train(TrainConfig(model_type="enhanced", hidden_dim=64, num_layers=2,
                                                     **common)).final_path}
    domain = private_domain_id()
    use_domain(domain)
    overrides = {**{name: str(path) for name, path in models.items()}, **TEST_PARAMETERS, "command_output": output}
    controller = controller_name(interface, output)  # the launch file's remapping for this controller
    process = start(policy_command(overrides, controller), ros_environment(domain), directory / "node.log")
    session = RobotSession()
    received: list = []
    kind, topic = ((Float64MultiArray, f"/{controller}/commands") if output == "forward"
                   else (JointTrajectory, f"/{controller}/joint_trajectory"))
    session.robot.create_subscription(kind, topic, received.append, 100)
    try:
        started = wait_for(lambda: process.poll() is not None or controlling(session.robot), STARTUP_S)
        assert started and process.poll() is None, (directory / "node.log").read_text()
        yield interface, output, session.robot, received
    finally:
        session.close()
        assert stop_process(process) == 0, (directory / "node.log").read_text()


def test_the_controllers_message_comes_on_its_topic_within_the_limits(node) -> None:
    interface, output, robot, received = node
    first = len(received)
    commands = robot.collect(1.0)
    messages = received[first:]
    assert len(messages) >= 0.8 * len(commands) > 50
    low, high = ((ARM.position_low, ARM.position_high) if interface == "position"
                 else ([-v for v in ARM.velocity_limit], ARM.velocity_limit))
    assert np.all(commands >= np.array(low) - 1e-9) and np.all(commands <= np.array(high) + 1e-9)
    if interface == "position":
        step = np.abs(np.diff(commands, axis=0))
        assert np.all(step <= np.array(ARM.velocity_limit) * DT + 1e-9), "a position moves at most v_max * dt"
    if output == "trajectory":
        trajectory = messages[-1]
        assert list(trajectory.joint_names) == JOINTS and len(trajectory.points) >= 2
        times = [point.time_from_start.sec + point.time_from_start.nanosec * 1e-9 for point in trajectory.points]
        np.testing.assert_allclose(times, DT * np.arange(1, len(times) + 1), atol=1e-9)
        positions = np.array([point.positions for point in trajectory.points])
        assert np.all(positions >= np.array(ARM.position_low) - 1e-9)
        assert np.all(positions <= np.array(ARM.position_high) + 1e-9)
        assert np.all(np.abs(np.diff(positions, axis=0)) <= np.array(ARM.velocity_limit) * DT + 1e-9)
    else:
        assert all(len(message.data) == len(JOINTS) for message in messages)


def test_a_position_command_starts_at_the_measured_position(node) -> None:
    interface, output, _, received = node
    if interface != "position":
        pytest.skip("the position interface's start")
    first = np.array(received[0].data if output == "forward" else received[0].points[0].positions)
    assert np.all(np.abs(first - POSITIONS) <= np.array(ARM.velocity_limit) * DT + 1e-9), first


def test_stale_input_yields_the_interfaces_safe_command(node) -> None:
    interface, _, robot, _ = node
    robot.corrupt = lambda msg, count, previous: None  # the joint states stop
    try:
        commands = robot.collect(1.0)
    finally:
        robot.corrupt = None
    held = np.array(POSITIONS) if interface == "position" else np.zeros(len(JOINTS))
    # Reached within the velocity limit after the timeout (0.1 s), then held exactly.
    assert len(commands) > 60
    np.testing.assert_allclose(commands[-20:], np.tile(held, (20, 1)), atol=1e-12)
