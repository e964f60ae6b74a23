"""``demo``: the learned policy drives a simulated robot to a series of goals over ROS 2.

    ros2 run fastpolicy_invdyn_ros demo --goals 5
    ros2 run fastpolicy_invdyn_ros demo --robot ur5e [--command_output trajectory]

``arm_sim`` and ``invdyn_policy`` run as separate processes from their console scripts with the
package's YAML files (as ``launch/sim_demo.launch.py`` starts them) in a private ROS domain; this
process watches the commands. The policy sends them to the controller of its robot's command interface
(``forward_command_controller`` for the 3-joint arm's torques, ``forward_position_controller`` for the
UR5e's positions, or ``joint_trajectory_controller`` with ``--command_output trajectory``), whose topic
``arm_sim`` takes for that robot. At the end it prints the goals reached, the final errors, the
achieved control rate, the state-to-command latency across processes and the commands' jerk, and
writes a PNG of the first episode.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

from ..core.files import write_text_atomic
from ..core.paths import share_path
from ..core.robot import UNITS
from ..core.settings import setting
from ..ros.closed_loop import closed_loop
from ..ros.command_output import COMMAND_OUTPUTS
from ..ros.monitor import CommandStats
from ..ros.processes import controller_name, wait_for
from ..sim.robots import DEFAULT_ROBOT, make_arm, shipped_model
from . import cli
from .plots import plot_reach

STARTUP_ALLOWANCE_S = 60.0
"""Time allowed for both nodes to start (imports, model loading, warm-up) on a busy machine."""


@dataclass
class DemoOptions:
    """The ``demo`` command line."""

    robot: str = DEFAULT_ROBOT
    """Which simulated robot: a built-in one (arm3: 3 joints, torque; ur5e: 6 joints, position) or an MJCF file."""
    command_output: str = setting("forward", choices=COMMAND_OUTPUTS)
    """How the policy sends its commands: forward (Float64MultiArray) or trajectory (JointTrajectory, position)."""
    goals: int = setting(5, low=1)
    """Goals to reach one after another."""
    seed: int = 0
    """Seeds the start configuration and the goals."""
    goal_timeout_s: float = setting(8.0, low=0.01)
    """Simulated seconds before an unreached goal is given up."""
    output_dir: str = "outputs/demo"
    """Where the report, the step log, the node logs and the PNG go."""
    planner_model_path: str = ""
    """Planner checkpoint ('': the robot's committed one, models/ or models/<robot>/planner_final.pth)."""
    invdyn_model_path: str = ""
    """Inverse dynamics checkpoint ('': the robot's committed one, models/ or models/<robot>/)."""


def control_period_s() -> float:
    """The policy's control period as the YAML the node reads sets it."""
    parameters = yaml.safe_load(share_path("config", "invdyn_policy.yaml").read_text())
    return 1.0 / parameters["invdyn_policy"]["ros__parameters"]["control_rate_hz"]


def run_closed_loop(options: DemoOptions, output_dir: Path, interface: str) -> CommandStats:
    """Run both nodes until the sim has finished its goals; returns what the monitor saw."""
    models = {"planner_model_path": options.planner_model_path or shipped_model(options.robot, "planner_final.pth"),
              "invdyn_model_path": options.invdyn_model_path or shipped_model(options.robot,
                                                                              "invdyn_enhanced_final.pth")}
    sim_overrides = {"robot": options.robot, "num_goals": options.goals, "seed": options.seed,
                     "goal_timeout_s": options.goal_timeout_s, "exit_when_done": True,
                     "report_path": str(output_dir / "report.json"), "log_path": str(output_dir / "log.npz")}
    policy_overrides = {**models, "command_output": options.command_output}
    with closed_loop(output_dir, policy_overrides, sim_overrides,
                     controller=controller_name(interface, options.command_output)) as loop:
        print(f"demo: arm_sim and invdyn_policy in ROS domain {loop.domain_id}, {options.goals} goals ...", flush=True)
        wait_for(loop.finished, STARTUP_ALLOWANCE_S + 1.5 * options.goals * options.goal_timeout_s, poll_s=0.2)
        loop.check()
        monitor = loop.monitor
    if len(monitor.commands) < 4:
        raise RuntimeError(f"no commands computed from joint states were seen; see {output_dir}/*.log")
    return monitor.stats(control_period_s())


def plot_first_goal(log_path: Path, png_path: Path, command_unit: str) -> None:
    """Joint positions against the goal and the applied commands during the first goal."""
    log = np.load(log_path)
    goal = log["goal"]
    end = next((i for i in range(1, len(goal)) if not np.array_equal(goal[i], goal[0])), len(goal))
    plot_reach(png_path, log["time"][:end], log["state"][:end], goal[:end], log["command"][:end],
               [str(name) for name in log["joint_names"]], command_unit,
               "first goal over ROS 2: positions (solid) and goal (dashed)")


def print_report(report: dict, stats: CommandStats, period_s: float, command_unit: str) -> None:
    print(f"{'goal':>4}  {'reached':>7}  {'time_s':>6}  {'final_error_rad':>15}")
    for i, goal in enumerate(report["goals"], 1):
        print(f"{i:>4}  {'yes' if goal['reached'] else 'no':>7}  {goal['seconds']:>6.2f}  {goal['final_error']:>15.4f}")
    errors = [goal["final_error"] for goal in report["goals"]]
    print(f"goals reached: {report['reached']}/{report['num_goals']} (within {report['position_tolerance']} rad, "
          f"slower than {report['velocity_tolerance']} rad/s)")
    if errors:
        print(f"final error: median {np.median(errors):.4f} rad, max {np.max(errors):.4f} rad")
    print(f"control rate: {stats.rate_hz:.1f} Hz achieved (configured {1 / period_s:g} Hz), "
          f"{stats.late_ticks} ticks late by more than a period")
    print(f"state-to-command latency across processes: p50 {stats.latency_ms['p50']:.2f} ms, "
          f"p99 {stats.latency_ms['p99']:.2f} ms ({stats.count} commands)")
    print(f"RMS jerk of the commands: {stats.jerk:.4f} {command_unit} per step^3")


def demo(options: DemoOptions) -> int:
    output_dir = Path(options.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    interface = make_arm(options.robot).interface
    try:
        stats = run_closed_loop(options, output_dir, interface)
    except (RuntimeError, FileNotFoundError) as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 1
    report = json.loads((output_dir / "report.json").read_text())
    period_s = control_period_s()
    print_report(report, stats, period_s, UNITS[interface])
    plot_first_goal(output_dir / "log.npz", output_dir / "episode.png", UNITS[interface])
    write_text_atomic(output_dir / "summary.json", json.dumps({"report": report, "commands": asdict(stats)}, indent=2))
    print(f"wrote {output_dir}/episode.png, report.json, summary.json, log.npz and the node logs")
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(DemoOptions, demo, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
