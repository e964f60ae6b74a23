"""``evaluate``: closed-loop reaching on the simulated arm, the expert against the learned policy.

Every controller runs the same episodes (start configurations and goals drawn from ``--seed``,
a stream the demonstrations never used) for ``--episode_seconds``; an episode succeeds when it
ends at the goal, settled (``sim.task.goal_reached``). Prints a table, writes ``evaluate.csv``
and one PNG per controller showing the first episode.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..core.checkpoint import load_invdyn, load_planner
from ..core.device import select_device
from ..core.invdyn import InvDynamic
from ..core.metrics import action_sparc, percentiles_ms, rms_jerk
from ..core.paths import share_path
from ..core.policy import Policy, PolicyConfig
from ..core.settings import setting
from ..sim import ArmConfig, ArmSim, EpisodeRecord, ExpertConfig, ScriptedExpert, TaskConfig, run_episode, sample_task
from . import cli
from .plots import plot_reach
from .tables import markdown_table, write_csv


@dataclass
class EvaluateConfig:
    """What to evaluate and how: the ``evaluate`` command line."""

    planner: str = setting(default_factory=lambda: str(share_path("models", "planner_final.pth")))
    """Diffusion planner checkpoint."""
    invdyn: list[str] = setting(default_factory=lambda: [str(share_path("models", "invdyn_enhanced_final.pth"))])
    """Inverse dynamics checkpoints to compare."""
    samplers: list[str] = setting(["ddim"])
    """Planner samplers to run each model with: ddim and/or ddpm (every training step)."""
    episodes: int = setting(50, low=1)
    """Episodes per controller."""
    seed: int = 1000
    """Seed of the held-out starts and goals."""
    episode_seconds: float = setting(4.0, low=0.01)
    """Time limit of each episode."""
    output_dir: str = "outputs/evaluate"
    """Where the CSV and PNGs go."""
    device: str = "auto"
    """auto (CUDA when present), cpu, cuda or cuda:N."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """The policy's settings, as the node's parameters of the same names."""

    def __post_init__(self) -> None:
        if not set(self.samplers) <= {"ddim", "ddpm"}:
            raise ValueError(f"samplers must be ddim and/or ddpm, got {self.samplers}")


@dataclass
class ControllerResult:
    controller: str
    success_rate: float
    median_final_error: float
    rms_jerk: float
    sparc: float
    tick_p50_ms: float
    tick_p99_ms: float
    plan_p50_ms: float
    plan_p99_ms: float


class PolicyController:
    """Adapts ``Policy`` to the ``run_episode`` controller signature and times its ticks and plans."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.tick_seconds: list[float] = []
        self.plan_seconds: list[float] = []

    def reset(self) -> None:
        self.policy.reset()

    def __call__(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        action = self.policy.select_action(state, goal)
        elapsed = time.perf_counter() - started
        status = self.policy.status
        if status.plan_age_ticks == 0:  # planned inline on this tick: count it as a plan, not a tick
            self.plan_seconds.append(status.plan_seconds)
        else:
            self.tick_seconds.append(elapsed)
        return action


def run_controller(sim: ArmSim, controller, tasks: list[tuple[np.ndarray, np.ndarray]], steps: int,
                   name: str) -> list[EpisodeRecord]:
    records = []
    for q0, goal in tqdm(tasks, desc=name, unit="episode", leave=False):
        controller.reset()
        records.append(run_episode(sim, controller, goal, q0, steps))
    return records


def summarize_controller(name: str, records: list[EpisodeRecord], dt: float, tick: list[float],
                         plan: list[float]) -> ControllerResult:
    tick_ms, plan_ms = percentiles_ms(tick), percentiles_ms(plan)
    return ControllerResult(
        controller=name,
        success_rate=float(np.mean([r.reached for r in records])),
        median_final_error=float(np.median([r.final_error for r in records])),
        rms_jerk=float(np.mean([rms_jerk(r.actions) for r in records])),
        sparc=float(np.mean([action_sparc(r.actions, dt) for r in records])),
        tick_p50_ms=tick_ms["p50"], tick_p99_ms=tick_ms["p99"], plan_p50_ms=plan_ms["p50"], plan_p99_ms=plan_ms["p99"],
    )


def model_kind(invdyn: InvDynamic) -> str:
    return f"{invdyn.config.model_type}{'_prob' if invdyn.config.use_probabilistic else ''}"


def evaluate(config: EvaluateConfig) -> list[ControllerResult]:
    torch.set_num_threads(1)  # as in the node: tick and planner each on one core
    device = select_device(config.device)
    sim = ArmSim(ArmConfig())
    planner = load_planner(config.planner, device, state_dim=sim.state_dim, goal_dim=sim.num_joints)
    models = [load_invdyn(path, device, state_dim=sim.state_dim, action_dim=sim.action_dim) for path in config.invdyn]
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    task = TaskConfig(episode_seconds=config.episode_seconds)
    rng = np.random.default_rng(config.seed)
    tasks = [sample_task(sim, rng, task.goal_margin) for _ in range(config.episodes)]
    steps = round(config.episode_seconds / sim.dt)

    expert = ScriptedExpert(sim, ExpertConfig(), np.random.default_rng(config.seed))
    expert_records = run_controller(sim, expert, tasks, steps, "expert")
    rows = [summarize_controller("expert", expert_records, sim.dt, [], [])]
    plot_episode(output_dir / "expert.png", expert_records[0], sim.dt, sim.joint_names, "expert")

    kinds = [model_kind(invdyn) for invdyn in models]
    for invdyn_path, invdyn, kind in zip(config.invdyn, models, kinds):
        # Several models of one kind are told apart by their directory.
        label = kind if kinds.count(kind) == 1 else f"{kind}({Path(invdyn_path).parent.name})"
        for sampler in config.samplers:
            policy_config = replace(config.policy, planning=replace(config.policy.planning, sampler=sampler))
            policy = Policy(planner, invdyn, policy_config, -sim.torque_limit, sim.torque_limit, sim.dt)
            controller = PolicyController(policy)
            name = f"{label}+{sampler}"
            records = run_controller(sim, controller, tasks, steps, name)
            rows.append(summarize_controller(name, records, sim.dt, controller.tick_seconds, controller.plan_seconds))
            plot_episode(output_dir / f"{name}.png", records[0], sim.dt, sim.joint_names, name)

    write_csv(output_dir / "evaluate.csv", rows)
    print(markdown_table(rows))
    print(f"wrote {output_dir / 'evaluate.csv'} and one PNG per controller in {output_dir}")
    return rows


def plot_episode(path: Path, record: EpisodeRecord, dt: float, joint_names: list[str], name: str) -> None:
    """Joint positions against the goal, and the commands, over one episode."""
    outcome = "reached" if record.reached else "not reached"
    plot_reach(path, np.arange(len(record.states)) * dt, record.states, record.goals, record.actions, joint_names,
               f"{name}: {outcome}, final error {record.final_error:.3f} rad")


def main(argv: list[str] | None = None) -> int:
    return cli.run(EvaluateConfig, evaluate, argv, __doc__, exclude=("sampler",))


if __name__ == "__main__":
    sys.exit(main())
