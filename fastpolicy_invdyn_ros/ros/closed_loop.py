"""The simulated arm and the policy as separate ROS 2 processes, watched from this one (demo, benchmark, tests)."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .common import apply_thread_priority, spinning
from .monitor import CommandMonitor
from .processes import (FORWARD_CONTROLLERS, log_tail, policy_command, private_domain_id, ros_environment,
                        sim_command, start, stop_process, use_domain)


@dataclass
class ClosedLoop:
    """The running processes and the monitor of ``closed_loop``."""

    monitor: CommandMonitor
    sim: subprocess.Popen
    policy: subprocess.Popen
    domain_id: int
    log_dir: Path

    def finished(self) -> bool:
        """One of the nodes has exited."""
        return self.sim.poll() is not None or self.policy.poll() is not None

    def check(self) -> None:
        """Raise RuntimeError, with the end of its log, if a node exited with an error."""
        for name, process in (("arm_sim", self.sim), ("invdyn_policy", self.policy)):
            if process.poll() not in (None, 0):
                raise RuntimeError(f"{name} exited with code {process.returncode}: "
                                   f"{log_tail(self.log_dir / f'{name}.log', 3)}")


@contextmanager
def closed_loop(log_dir: Path, policy_overrides: dict[str, object], sim_overrides: dict[str, object],
                monitor_priority: int = 0, controller: str = FORWARD_CONTROLLERS["effort"]) -> Iterator[ClosedLoop]:
    """arm_sim and invdyn_policy in a private domain with a ``CommandMonitor`` spinning here; all stopped on exit.
    The policy's commands go to ``controller``'s topics (arm_sim takes those of its robot's interface).

    ``monitor_priority`` > 0 runs this process's threads (the monitor's middleware threads, which stamp
    each command's arrival, among them) at that SCHED_FIFO priority, as a robot's controller manager runs."""
    domain = private_domain_id()
    use_domain(domain)
    env = ros_environment(domain)
    policy_line, sim_line = policy_command(policy_overrides, controller), sim_command(sim_overrides)  # both found, or neither runs
    policy = start(policy_line, env, log_dir / "invdyn_policy.log")
    sim = start(sim_line, env, log_dir / "arm_sim.log")
    with spinning(CommandMonitor) as monitor:
        apply_thread_priority(monitor, monitor_priority)
        try:
            yield ClosedLoop(monitor, sim, policy, domain, log_dir)
        finally:
            stop_process(sim)
            stop_process(policy)
