"""``evaluate``: closed-loop reaching on the simulated arm, the expert against the learned policy.

Every controller runs the same episodes (start configurations and goals drawn from ``--seed``,
a stream the demonstrations never used) for ``--episode_seconds``; an episode succeeds when it
ends at the goal, settled (``sim.task.goal_reached``). Prints a table, writes ``evaluate.csv``
and one PNG per controller showing the first episode.
"""
from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm import tqdm

from . import cli
from .checkpoint import load_invdyn, load_planner
from .device import select_device
from .invdyn import InvDynamic
from .metrics import action_sparc, percentiles_ms, rms_jerk
from .paths import share_path
from .policy import Policy, PolicyConfig
from .sim import (ArmConfig, ArmSim, EpisodeRecord, ExpertConfig, ScriptedExpert, TaskConfig, run_episode,
                  sample_task)
from .smoothing import SmootherConfig


@dataclass
class EvaluateConfig:
    """Options of ``evaluate``."""

    planner: str = cli.option(str(share_path("models", "planner_final.pth")), "diffusion planner checkpoint")
    invdyn: list[str] = cli.option([str(share_path("models", "invdyn_enhanced_final.pth"))],
                                   "inverse dynamics checkpoints to compare")
    samplers: list[str] = cli.option(["ddim"], "planner samplers to run each model with: ddim and/or ddpm (100 steps)")
    episodes: int = cli.option(50, "episodes per controller")
    seed: int = cli.option(1000, "seed of the held-out starts and goals")
    episode_seconds: float = cli.option(4.0, "time limit of each episode")
    num_inference_samples: int = cli.option(8, "plans per replan")
    num_inference_steps: int = cli.option(5, "DDIM steps of a cold-start plan")
    replan_every: int = cli.option(4, "ticks between plans")
    warm_start: bool = cli.option(True, "warm start each plan from the previous one")
    temperature: float = cli.option(0.0, "sampling temperature of a probabilistic inverse dynamics model")
    smoothing: bool = cli.option(True, "low-pass and slew-limit the commands")
    cutoff_hz: float = cli.option(SmootherConfig.cutoff_hz, "low-pass cutoff in Hz")
    slew_rate: float = cli.option(SmootherConfig.slew_rate, "slew limit in N·m/s")
    output_dir: str = cli.option("outputs/evaluate", "where the CSV and PNGs go")
    device: str = cli.option("auto", "auto (CUDA when present), cpu, cuda or cuda:N")


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


def plot_episode(path: Path, record: EpisodeRecord, dt: float, joint_names: list[str], title: str) -> None:
    """Joint positions against the goal, and the commands, over one episode."""
    time_s = np.arange(len(record.states)) * dt
    num_joints = len(joint_names)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for j, name in enumerate(joint_names):
        line, = top.plot(time_s, record.states[:, j], label=name)
        top.axhline(record.goals[0, j], color=line.get_color(), linestyle="--", linewidth=0.8)
        bottom.plot(time_s, record.actions[:, j], color=line.get_color(), label=name)
    top.set_ylabel("position [rad] (dashed: goal)")
    bottom.set_ylabel("command [N·m]")
    bottom.set_xlabel("time [s]")
    top.legend(loc="upper right", fontsize=8, ncol=num_joints)
    fig.suptitle(f"{title}: {'reached' if record.reached else 'not reached'}, final error {record.final_error:.3f} rad")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def format_table(rows: list[ControllerResult]) -> str:
    header = list(ControllerResult.__dataclass_fields__)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        values = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in asdict(row).values()]
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines)


def model_kind(invdyn: InvDynamic) -> str:
    return f"{invdyn.config.model_type}{'_prob' if invdyn.config.use_probabilistic else ''}"


def evaluate(config: EvaluateConfig) -> list[ControllerResult]:
    torch.set_num_threads(1)  # as in the node: tick and planner each on one core
    device = select_device(config.device)
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    sim = ArmSim(ArmConfig())
    task = TaskConfig(episode_seconds=config.episode_seconds)
    rng = np.random.default_rng(config.seed)
    tasks = [sample_task(sim, rng, task.goal_margin) for _ in range(config.episodes)]
    steps = round(config.episode_seconds / sim.dt)

    expert = ScriptedExpert(sim, ExpertConfig(), np.random.default_rng(config.seed))
    expert_records = run_controller(sim, expert, tasks, steps, "expert")
    rows = [summarize_controller("expert", expert_records, sim.dt, [], [])]
    plot_episode(output_dir / "expert.png", expert_records[0], sim.dt, sim.joint_names, "expert")

    planner = load_planner(config.planner, device, state_dim=sim.state_dim, goal_dim=sim.num_joints)
    smoothing = SmootherConfig(config.smoothing, config.cutoff_hz, config.slew_rate)
    models = [load_invdyn(path, device, state_dim=sim.state_dim, action_dim=sim.action_dim) for path in config.invdyn]
    kinds = [model_kind(invdyn) for invdyn in models]
    for invdyn_path, invdyn, kind in zip(config.invdyn, models, kinds):
        # Several models of one kind are told apart by their directory.
        label = kind if kinds.count(kind) == 1 else f"{kind}({Path(invdyn_path).parent.name})"
        for sampler in config.samplers:
            policy_config = PolicyConfig(
                temperature=config.temperature, use_probabilistic_sampling=config.temperature > 0,
                num_inference_samples=config.num_inference_samples, num_inference_steps=config.num_inference_steps,
                sampler=sampler, warm_start=config.warm_start, replan_every=config.replan_every, smoothing=smoothing,
            )
            policy = Policy(planner, invdyn, policy_config, -sim.torque_limit, sim.torque_limit, sim.dt)
            controller = PolicyController(policy)
            name = f"{label}+{sampler}"
            records = run_controller(sim, controller, tasks, steps, name)
            rows.append(summarize_controller(name, records, sim.dt, controller.tick_seconds, controller.plan_seconds))
            plot_episode(output_dir / f"{name}.png", records[0], sim.dt, sim.joint_names, name)

    with open(output_dir / "evaluate.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(ControllerResult.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
    print(format_table(rows))
    print(f"wrote {output_dir / 'evaluate.csv'} and one PNG per controller in {output_dir}")
    return rows


def main(argv: list[str] | None = None) -> None:
    evaluate(cli.parse(EvaluateConfig, argv, __doc__))
