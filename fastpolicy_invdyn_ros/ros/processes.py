"""The package's nodes as processes: private ROS domains, command lines, start and stop.

Each run gets a private ROS domain (claimed with a lock file no other run on the machine can take) and
localhost-only discovery, so runs on one machine do not see each other, however many run at once. Nodes
are started from their console scripts with the package's YAML files, as the launch files start them, and
stopped with SIGINT (as Ctrl-C stops them), then SIGKILL. Imports no ROS module.
"""
from __future__ import annotations

import fcntl
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ..core.paths import PACKAGE, share_path

FORWARD_CONTROLLERS = {"effort": "forward_command_controller", "position": "forward_position_controller",
                       "velocity": "forward_velocity_controller"}
"""The ros2_control forward controller of each command interface: a Float64MultiArray on ``/<name>/commands``."""
TRAJECTORY_CONTROLLER = "joint_trajectory_controller"
"""The controller of ``command_output: trajectory``: a JointTrajectory on ``/<name>/joint_trajectory``."""
CONTROLLER_TOPIC = f"/{FORWARD_CONTROLLERS['effort']}/commands"
"""Where the policy's ``~/commands`` go by default: the forward_command_controller's input (the simulated arm's)."""


def controller_name(interface: str, command_output: str = "forward") -> str:
    """The controller that takes the policy's commands of ``interface`` sent as ``command_output``."""
    return TRAJECTORY_CONTROLLER if command_output == "trajectory" else FORWARD_CONTROLLERS[interface]


DOMAIN_IDS = range(10, 102)
"""The ROS domains private runs use (0-101 are valid on Linux; the lowest are left to people's own setups)."""
DOMAINS_HELD = 4
"""Claims a process keeps: a run's nodes may still be stopping when the same process starts the next run."""
_held: deque[IO[str]] = deque()


def private_domain_id() -> int:
    """A ROS domain for one run (the demo, a recording, a test) that no other run on this machine holds.

    Random, and claimed with an exclusive lock on a file in the temporary directory, which this process
    holds until it exits or has claimed ``DOMAINS_HELD`` newer domains: two runs at once (two test workers,
    a demo next to a benchmark) never share a domain, where a random pick alone sometimes did.
    """
    for domain in random.sample(DOMAIN_IDS, len(DOMAIN_IDS)):
        handle = open(Path(tempfile.gettempdir()) / f"fastpolicy_invdyn_ros.domain{domain}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held.append(handle)
        if len(_held) > DOMAINS_HELD:
            _held.popleft().close()
        return domain
    raise RuntimeError(f"every ROS domain {DOMAIN_IDS.start}-{DOMAIN_IDS.stop - 1} is held by another run here")


def ros_environment(domain_id: int) -> dict[str, str]:
    """This process's environment for a child node: the private domain, localhost discovery, one thread."""
    return {**os.environ, "ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def use_domain(domain_id: int) -> None:
    """Put this process in the run's domain (call before ``rclpy.init``)."""
    os.environ.update({"ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"})


def find_executable(name: str) -> str:
    """A console script of this package: beside the running script or Python (pip, colcon), or on PATH."""
    beside = [Path(sys.argv[0]).resolve().parent, Path(sys.executable).parent]
    colcon = [Path(prefix) / "lib" / PACKAGE for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
              if prefix]
    path = os.pathsep.join(str(directory) for directory in beside + colcon) + os.pathsep + os.environ.get("PATH", "")
    found = shutil.which(name, path=path)
    if found is None:
        raise FileNotFoundError(f"console script {name!r} not found; install the package (make setup or colcon build)")
    return found


def node_command(executable: str, params_file: Path, overrides: dict[str, object] | None = None,
                 remaps: dict[str, str] | None = None) -> list[str]:
    """``<executable> --ros-args --params-file <file> -p name:=value ... -r from:=to ...``."""
    command = [find_executable(executable), "--ros-args", "--params-file", str(params_file)]
    for name, value in (overrides or {}).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        command += ["-p", f"{name}:={text}"]
    for source, target in (remaps or {}).items():
        command += ["-r", f"{source}:={target}"]
    return command


def start(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Run a node with its output going to ``log_path``."""
    with open(log_path, "w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_process(process: subprocess.Popen, timeout_s: float = 10.0) -> int:
    """SIGINT (the node shuts down and writes its outputs), then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def policy_command(overrides: dict[str, object] | None = None,
                   controller: str = FORWARD_CONTROLLERS["effort"]) -> list[str]:
    """The policy node as the launch file runs it: the package YAML, ``~/commands`` and ``~/joint_trajectory``
    going to ``controller``'s topics."""
    return node_command("invdyn_policy", share_path("config", "invdyn_policy.yaml"), overrides,
                        {"~/commands": f"/{controller}/commands",
                         "~/joint_trajectory": f"/{controller}/joint_trajectory"})


def sim_command(overrides: dict[str, object] | None = None) -> list[str]:
    return node_command("arm_sim", share_path("config", "arm_sim.yaml"), overrides)


def wait_for(condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.05) -> bool:
    """Poll ``condition()`` until it is true or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return condition()




def log_tail(path: Path, lines: int = 5) -> str:
    """The last ``lines`` lines of a node's log, on one line."""
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"
