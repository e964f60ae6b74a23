"""The invdyn_policy node as a managed (lifecycle) node, driven through its real change_state and get_state
services over DDS, as ``ros2 lifecycle set`` and launch do: started with ``autostart:=false``."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from ros_harness import TEST_PARAMETERS, FakeRobot, RobotSession, controlling, is_safe

from fastpolicy_invdyn_ros.ros.processes import (policy_command, private_domain_id, ros_environment, start,
                                                 stop_process, use_domain, wait_for)


def children(pid: int) -> list[int]:
    """The planner processes of a node: children started by multiprocessing (not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if parent == pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except (OSError, IndexError):
                pass
    return found


def test_a_failed_configure_leaves_the_node_unconfigured_with_one_error(tiny_models, tmp_path) -> None:
    """(First in this file: rclpy is initialized once per process, and the module's node below holds it.)"""
    domain = private_domain_id()
    use_domain(domain)
    log = tmp_path / "invdyn_policy.log"
    overrides = {**{name: str(path) for name, path in tiny_models.items()}, **TEST_PARAMETERS, "autostart": False,
                 "planner_model_path": str(tmp_path / "missing.pth")}
    process = start(policy_command(overrides), ros_environment(domain), log)
    session = None
    try:
        session = RobotSession()
        robot = session.robot
        assert not robot.change_state("configure")
        assert robot.lifecycle_state() == "unconfigured" and process.poll() is None
        errors = [line for line in log.read_text().splitlines() if "[ERROR]" in line]
        assert len(errors) == 1 and "configure failed" in errors[0] and "missing.pth" in errors[0], errors
        assert robot.change_state("shutdown") and robot.lifecycle_state() == "finalized"
    finally:
        if session is not None:
            session.close()
        assert stop_process(process) == 0, log.read_text()
    assert "Traceback" not in log.read_text()


@pytest.fixture(scope="module")
def managed(tiny_models, tmp_path_factory) -> Iterator[tuple[FakeRobot, Path]]:
    domain = private_domain_id()
    use_domain(domain)
    log = tmp_path_factory.mktemp("lifecycle") / "invdyn_policy.log"
    # Two executor threads: the services run in a MultiThreadedExecutor here (every other node test has one thread).
    overrides = {**{name: str(path) for name, path in tiny_models.items()}, **TEST_PARAMETERS, "autostart": False,
                 "executor_threads": 2}
    process = start(policy_command(overrides), ros_environment(domain), log)
    try:
        session = RobotSession()
    except BaseException:
        stop_process(process)
        raise
    session.robot.process = process
    try:
        yield session.robot, log
    finally:
        session.close()
        assert stop_process(process) == 0, log.read_text()


def reported(robot: FakeRobot, lifecycle_state: str) -> bool:
    """The newest diagnostics tell ``lifecycle_state``: while active only the tick reports, else only the timer."""
    return robot.diagnostic_value("lifecycle_state") == lifecycle_state


def test_transitions_through_the_lifecycle_services(managed) -> None:
    robot, log = managed
    assert robot.lifecycle_state() == "unconfigured"
    assert len(robot.collect(0.5)) == 0, "an unconfigured node commands nothing"
    assert children(robot.process.pid) == [], "no planner before configure"

    assert robot.change_state("configure")
    assert robot.lifecycle_state() == "inactive"
    assert len(children(robot.process.pid)) == 1, "configure starts the planner process"
    assert len(robot.collect(0.5)) == 0, "an inactive node commands nothing"
    assert robot.get_remote("temperature") == TEST_PARAMETERS["temperature"]

    assert wait_for(lambda: reported(robot, "inactive"), 3.0), "reports while not commanding (its timer)"

    assert robot.change_state("activate")
    assert robot.lifecycle_state() == "active"
    assert wait_for(lambda: controlling(robot), 20.0), log.read_text()
    assert wait_for(lambda: reported(robot, "active"), 3.0), "reports while commanding (the tick)"

    received = len(robot.commands)
    assert robot.change_state("deactivate")
    assert robot.lifecycle_state() == "inactive"
    robot.collect(0.3)
    after = robot.commands[received:]
    assert after and is_safe(after[-1]), "the last command is the safe command"
    assert len(robot.collect(0.5)) == 0, "then nothing"
    assert wait_for(lambda: reported(robot, "inactive"), 3.0), "the timer reports again once the tick stopped"

    assert robot.change_state("activate"), "inactive -> active again"
    assert wait_for(lambda: controlling(robot), 20.0)
    assert robot.change_state("deactivate")

    planner = children(robot.process.pid)
    assert robot.change_state("cleanup")
    assert robot.lifecycle_state() == "unconfigured"
    assert wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in planner), 10.0), \
        "cleanup stops the planner process"
    assert robot.change_state("configure") and robot.change_state("activate"), "configure again after a cleanup"
    assert wait_for(lambda: controlling(robot), 20.0)


def test_live_parameters_are_refused_or_applied_in_every_state(managed) -> None:
    robot, _ = managed
    assert robot.lifecycle_state() == "active" or robot.change_state("configure") and robot.change_state("activate")
    for label in ("deactivate", "cleanup"):
        [result] = robot.set_remote(replan_every=0)
        assert not result.successful
        assert all(result.successful for result in robot.set_remote(replan_every=3))
        assert robot.change_state(label)
    [result] = robot.set_remote(replan_every=0)
    assert not result.successful and robot.get_remote("replan_every") == 3
