"""``evaluate``: closed loop on a simulated robot (``--robot``), the scripted expert against the learned policy.

Every controller runs the same episodes of the task (``--task reach``, the default, or
``--task obstacle``: past a keep-out disk, either way around), with starts and goals drawn from
``--seed``, a stream the demonstrations never used. An episode succeeds when it ends at the goal,
settled (``sim.task.goal_reached``), without entering the disk. Each model runs with every
``--samplers`` and ``--sample_selections`` given (the rules that pick the executed plan of the
sampled ones, ``core.selection``). Prints a table; writes ``evaluate.csv``, ``episodes.csv`` (per
episode: reached, collided, the side taken, how often the executed plan switched sides, the final
error, the least clearance from the disk and when the arm first entered it), a PNG of the first
episode per controller, and for the obstacle task ``paths.png``: a few episodes' paths in the disk's
plane, per controller.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..core.checkpoint import check_robot, load_invdyn, load_planner
from ..core.device import select_device
from ..core.invdyn import InvDynamic
from ..core.metrics import action_sparc, percentiles_ms, rms_jerk
from ..core.planner import SAMPLERS
from ..core.planning import Planning, PlanningConfig
from ..core.policy import Policy, PolicyConfig
from ..core.robot import UNITS, RobotDescription
from ..core.runtime import RuntimeConfig, load_action_step, load_planner_networks
from ..core.selection import SAMPLE_SELECTIONS
from ..core.settings import setting
from ..sim import ArmSim, EpisodeRecord, ExpertConfig, run_episode
from ..sim.robots import DEFAULT_ROBOT, make_arm, shipped_model
from ..sim.tasks import TASKS, Task
from . import cli
from .plots import plot_paths, plot_reach
from .tables import markdown_table, write_csv

EXCLUDED = ("sampler", "sample_selection")
"""Policy settings that ``samplers`` and ``sample_selections`` give per controller instead."""


@dataclass
class EvaluateConfig:
    """What to evaluate and how: the ``evaluate`` command line."""

    robot: str = DEFAULT_ROBOT
    """Which simulated robot: a built-in one (arm3: 3 joints, torque; ur5e: 6 joints, position) or an MJCF file."""
    task: str = setting("reach", choices=TASKS)
    """Which task: reach (random goals) or obstacle (past a keep-out disk, either way around)."""
    planner: str = ""
    """Diffusion planner checkpoint ('': the robot's committed one, models/ or models/<robot>/)."""
    invdyn: list[str] = setting(default_factory=list)
    """Inverse dynamics checkpoints to compare (none given: the robot's committed one)."""
    samplers: list[str] = setting(["ddim"])
    """Planner samplers to run each model with: ddim and/or ddpm (every training step)."""
    sample_selections: list[str] = setting(default_factory=lambda: [PlanningConfig.sample_selection])
    """Rules that pick the executed plan, each run in turn: consistent, mode, mean (core/selection.py)."""
    episodes: int = setting(50, low=1)
    """Episodes per controller."""
    seed: int = 1000
    """Seed of the held-out starts and goals."""
    episode_seconds: float | None = setting(None, low=0.01)
    """Time limit of each episode (unset: the task's, 4 s reaching, 5 s past the obstacle)."""
    output_dir: str = "outputs/evaluate"
    """Where the CSV files and PNGs go."""
    device: str = "auto"
    """auto (CUDA when present), cpu, cuda or cuda:N."""
    execution: RuntimeConfig = field(default_factory=RuntimeConfig)
    """What runs the models (runtime), as the node's parameter."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """The policy's settings, as the node's parameters of the same names."""

    def __post_init__(self) -> None:
        if not set(self.samplers) <= set(SAMPLERS):
            raise ValueError(f"samplers must be ddim and/or ddpm, got {self.samplers}")
        if not set(self.sample_selections) <= set(SAMPLE_SELECTIONS):
            raise ValueError(f"sample_selections must be among {SAMPLE_SELECTIONS}, got {self.sample_selections}")


@dataclass
class ControllerResult:
    controller: str
    success_rate: float
    """Episodes that ended at the goal, settled, without a collision."""
    collision_rate: float
    side_plus: float
    """Episodes that went around on side +1 (obstacle task)."""
    side_minus: float
    median_switches: float
    """Median over episodes of the side switches of the executed plan (NaN for the expert)."""
    median_final_error: float
    rms_jerk: float
    sparc: float
    tick_p50_ms: float
    tick_p99_ms: float
    plan_p50_ms: float
    plan_p99_ms: float


@dataclass
class EpisodeOutcome:
    controller: str
    episode: int
    reached: bool
    collided: bool
    side: int
    switches: int
    """Times the executed plan changed sides (-1: not a planning controller)."""
    final_error: float
    min_clearance: float
    """Least distance (rad) outside the keep-out region over the episode, negative inside (inf: the task has none)."""
    collided_at_s: float
    """Time of the first state inside the keep-out region (nan: none)."""


class PolicyController:
    """Adapts ``Policy`` to the ``run_episode`` controller signature; times its ticks and plans and notes the
    side of each new executed plan."""

    def __init__(self, policy: Policy, task: Task) -> None:
        self.policy, self.task = policy, task
        self.tick_seconds: list[float] = []
        self.plan_seconds: list[float] = []
        self.plan_sides: list[list[int]] = []
        self._plan_seen = None

    def reset(self) -> None:
        self.policy.reset()
        self.plan_sides.append([])

    def __call__(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        action = self.policy.select_action(state, goal)
        elapsed = time.perf_counter() - started
        status = self.policy.status
        if status.plan_age_ticks == 0:  # planned inline on this tick: count it as a plan, not a tick
            self.plan_seconds.append(status.plan_seconds)
        else:
            self.tick_seconds.append(elapsed)
        plan = self.policy.plan
        if plan is not None and plan is not self._plan_seen:
            self._plan_seen = plan
            self.plan_sides[-1].append(self.task.side(plan.executed.mean(0).cpu().numpy(), goal))
        return action


def side_switches(sides: list[int]) -> int:
    """Changes of side between consecutive plans that have one."""
    decided = [side for side in sides if side]
    return sum(a != b for a, b in zip(decided, decided[1:]))


def run_controller(sim: ArmSim, controller, episodes: list[tuple[np.ndarray, np.ndarray]], steps: int,
                   name: str) -> list[EpisodeRecord]:
    records = []
    for q0, goal in tqdm(episodes, desc=name, unit="episode", leave=False):
        controller.reset()
        records.append(run_episode(sim, controller, goal, q0, steps))
    return records


def outcomes(name: str, records: list[EpisodeRecord], task: Task, plan_sides: list[list[int]] | None
             ) -> list[EpisodeOutcome]:
    return [outcome(name, i, record, task, -1 if plan_sides is None else side_switches(plan_sides[i]))
            for i, record in enumerate(records)]


def outcome(name: str, index: int, record: EpisodeRecord, task: Task, switches: int) -> EpisodeOutcome:
    clearance = task.clearance(record.states)
    inside = np.flatnonzero(clearance < 0.0)
    return EpisodeOutcome(name, index, record.reached, len(inside) > 0, task.side(record.states, record.goals[0]),
                          switches, record.final_error, float(clearance.min()),
                          float(inside[0] * task.sim.dt) if len(inside) else float("nan"))


def summarize_controller(name: str, records: list[EpisodeRecord], episodes: list[EpisodeOutcome], dt: float,
                         tick: list[float], plan: list[float]) -> ControllerResult:
    tick_ms, plan_ms = percentiles_ms(tick), percentiles_ms(plan)
    switches = [episode.switches for episode in episodes if episode.switches >= 0]
    return ControllerResult(
        controller=name,
        success_rate=float(np.mean([e.reached and not e.collided for e in episodes])),
        collision_rate=float(np.mean([e.collided for e in episodes])),
        side_plus=float(np.mean([e.side > 0 for e in episodes])),
        side_minus=float(np.mean([e.side < 0 for e in episodes])),
        median_switches=float(np.median(switches)) if switches else float("nan"),
        median_final_error=float(np.median([e.final_error for e in episodes])),
        rms_jerk=float(np.mean([rms_jerk(r.actions) for r in records])),
        sparc=float(np.mean([action_sparc(r.actions, dt) for r in records])),
        tick_p50_ms=tick_ms["p50"], tick_p99_ms=tick_ms["p99"], plan_p50_ms=plan_ms["p50"], plan_p99_ms=plan_ms["p99"],
    )


def model_kind(invdyn: InvDynamic) -> str:
    return f"{invdyn.config.model_type}{'_prob' if invdyn.config.use_probabilistic else ''}"


def evaluate(config: EvaluateConfig) -> list[ControllerResult]:
    torch.set_num_threads(1)  # as in the node: tick and planner each on one core
    device = select_device(config.device)
    sim = make_arm(config.robot)
    robot = sim.description()
    planner_path = config.planner or str(shipped_model(config.robot, "planner_final.pth"))
    invdyn_paths = config.invdyn or [str(shipped_model(config.robot, "invdyn_enhanced_final.pth"))]
    for path in (planner_path, *invdyn_paths):
        check_robot(path, robot)
    planner = load_planner(planner_path, device, state_dim=sim.state_dim, goal_dim=sim.num_joints)
    models = [load_invdyn(path, device, state_dim=sim.state_dim, action_dim=sim.action_dim) for path in invdyn_paths]
    networks, choice = load_planner_networks(planner, planner_path, config.execution.runtime, device)
    cli.report_runtime("planner", choice)
    planning_runtime = Planning(planner, networks)
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    task = Task(config.task, sim)
    rng = np.random.default_rng(config.seed)
    episodes = [task.sample(rng) for _ in range(config.episodes)]
    steps = round((config.episode_seconds or task.episode_seconds) / sim.dt)

    expert = task.expert(ExpertConfig(), np.random.default_rng(config.seed))
    expert_records = run_controller(sim, expert, episodes, steps, "expert")
    every_outcome = outcomes("expert", expert_records, task, None)
    rows = [summarize_controller("expert", expert_records, every_outcome, sim.dt, [], [])]
    runs = {"expert": expert_records}
    kinds = [model_kind(invdyn) for invdyn in models]
    for invdyn_path, invdyn, kind in zip(invdyn_paths, models, kinds):
        # Several models of one kind are told apart by their directory.
        label = kind if kinds.count(kind) == 1 else f"{kind}({Path(invdyn_path).parent.name})"
        action_step, choice = load_action_step(invdyn, invdyn_path, config.execution.runtime, device)
        cli.report_runtime(label, choice)
        for sampler in config.samplers:
            for selection in config.sample_selections:
                planning = replace(config.policy.planning, sampler=sampler, sample_selection=selection)
                policy = Policy.for_robot(planner, invdyn, replace(config.policy, planning=planning), robot,
                                          action_step=action_step, planning=planning_runtime)
                controller = PolicyController(policy, task)
                name = f"{label}+{sampler}+{selection}"
                records = run_controller(sim, controller, episodes, steps, name)
                episode_outcomes = outcomes(name, records, task, controller.plan_sides)
                every_outcome += episode_outcomes
                rows.append(summarize_controller(name, records, episode_outcomes, sim.dt, controller.tick_seconds,
                                                 controller.plan_seconds))
                runs[name] = records
    for name, records in runs.items():
        plot_episode(output_dir / f"{name}.png", records[0], robot, name)
    if task.name == "obstacle":
        plot_paths(output_dir / "paths.png", {name: records[:8] for name, records in runs.items()},
                   task.obstacle, [sim.joint_names[j] for j in task.obstacle.joints])
    write_csv(output_dir / "evaluate.csv", rows)
    write_csv(output_dir / "episodes.csv", every_outcome)
    print(markdown_table(rows))
    print(f"wrote {output_dir / 'evaluate.csv'}, episodes.csv and the PNGs in {output_dir}")
    return rows


def plot_episode(path: Path, record: EpisodeRecord, robot: RobotDescription, name: str) -> None:
    """Joint positions against the goal, and the commands, over one episode."""
    outcome = "reached" if record.reached else "not reached"
    plot_reach(path, np.arange(len(record.states)) * robot.control_dt, record.states, record.goals, record.actions,
               robot.joint_names, UNITS[robot.command_interface],
               f"{name}: {outcome}, final error {record.final_error:.3f} rad")


def main(argv: list[str] | None = None) -> int:
    return cli.run(EvaluateConfig, evaluate, argv, __doc__, exclude=EXCLUDED)


if __name__ == "__main__":
    sys.exit(main())
