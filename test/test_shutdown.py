"""Ctrl-C as ``ros2 launch`` and a terminal deliver it: SIGINT to the whole process group (the node and its
planner process alike), maybe a second SIGINT from launch, then SIGTERM. Every process of the package exits
0, silently (no traceback), after its safe command, and no planner process outlives its node, even after a
``kill -9`` of the node."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ros_harness import TEST_PARAMETERS, FakeRobot, RobotSession, controlling, is_safe

from fastpolicy_invdyn_ros.ros.processes import (policy_command, private_domain_id, ros_environment, sim_command,
                                                 use_domain, wait_for)

RUNS = 20
"""SIGINTs to the group of a running node with its planner (two nodes at a time)."""


def start_group(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A node in a process group of its own, as a terminal or launch starts it."""
    with open(log, "w") as handle:
        return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def group_alive(pgid: int) -> bool:
    """A process of the group is still running (zombies of exited children aside)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def planner_started(log: Path) -> bool:
    return "active: commanding" in log.read_text()


def policy_line(tiny_models, **overrides) -> list[str]:
    return policy_command({**{name: str(path) for name, path in tiny_models.items()}, **TEST_PARAMETERS,
                           **overrides})


def interrupt(process: subprocess.Popen, log: Path, *, second_after_s: float | None = None,
              timeout_s: float = 20.0) -> str:
    """SIGINT to the group (and a second one to the node after ``second_after_s``); returns the log once all
    of the group is gone, asserting a clean exit."""
    os.killpg(process.pid, signal.SIGINT)
    if second_after_s is not None:
        time.sleep(second_after_s)
        process.send_signal(signal.SIGINT)
    code = process.wait(timeout_s)
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert wait_for(lambda: not group_alive(process.pid), 5.0), f"a process of the group outlived the node:\n{text}"
    return text


def test_sigint_to_the_group_of_a_node_with_its_planner_ends_it_cleanly_every_time(tiny_models, tmp_path) -> None:
    env = ros_environment(private_domain_id())
    for run in range(0, RUNS, 2):
        pair = []
        for k in (run, run + 1):
            log = tmp_path / f"{k}.log"
            pair.append((start_group(policy_line(tiny_models), env, log), log))
        for process, log in pair:
            assert wait_for(lambda: planner_started(log) or process.poll() is not None, 120.0), log.read_text()
            assert process.poll() is None, log.read_text()
        for process, log in pair:
            text = interrupt(process, log)
            assert "shutting down: sent the safe command" in text, text


def test_a_second_sigint_during_shutdown_is_the_same_request(tiny_models, tmp_path) -> None:
    env = ros_environment(private_domain_id())
    log = tmp_path / "policy.log"
    process = start_group(policy_line(tiny_models), env, log)
    assert wait_for(lambda: planner_started(log) or process.poll() is not None, 120.0), log.read_text()
    interrupt(process, log, second_after_s=0.1)


def test_sigterm_alone_ends_the_node_cleanly(tiny_models, tmp_path) -> None:
    env = ros_environment(private_domain_id())
    log = tmp_path / "policy.log"
    process = start_group(policy_line(tiny_models), env, log)
    assert wait_for(lambda: planner_started(log) or process.poll() is not None, 120.0), log.read_text()
    process.send_signal(signal.SIGTERM)
    assert process.wait(20.0) == 0, log.read_text()
    assert wait_for(lambda: not group_alive(process.pid), 5.0), "the planner outlived its node"


def test_no_planner_outlives_a_node_killed_with_sigkill(tiny_models, tmp_path) -> None:
    env = ros_environment(private_domain_id())
    log = tmp_path / "policy.log"
    process = start_group(policy_line(tiny_models), env, log)
    assert wait_for(lambda: planner_started(log) or process.poll() is not None, 120.0), log.read_text()
    process.kill()
    process.wait()
    assert wait_for(lambda: not group_alive(process.pid), 10.0), "the planner process was orphaned"


@pytest.fixture
def robot() -> Iterator[FakeRobot]:
    domain = private_domain_id()
    use_domain(domain)
    session = RobotSession()
    try:
        yield session.robot
    finally:
        session.close()


def test_the_last_command_before_exit_is_the_safe_command(tiny_models, tmp_path, robot: FakeRobot) -> None:
    log = tmp_path / "policy.log"
    process = start_group(policy_line(tiny_models), ros_environment(int(os.environ["ROS_DOMAIN_ID"])), log)
    assert wait_for(lambda: process.poll() is not None or controlling(robot), 120.0), log.read_text()
    interrupt(process, log)
    time.sleep(0.3)  # the last messages in flight
    assert robot.commands and is_safe(robot.commands[-1]), robot.commands[-3:]


def test_arm_sim_ends_cleanly_on_sigint_to_its_group_and_a_second_one(tmp_path) -> None:
    env = ros_environment(private_domain_id())
    log_path, report = tmp_path / "arm_sim.log", tmp_path / "report.json"
    process = start_group(sim_command({"wait_for_command": False, "report_path": str(report)}), env, log_path)
    assert wait_for(lambda: "Hz physics" in log_path.read_text() or process.poll() is not None, 60.0)
    time.sleep(0.5)
    interrupt(process, log_path, second_after_s=0.1)
    assert report.is_file(), "it writes its report as it stops"
