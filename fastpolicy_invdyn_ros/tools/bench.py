"""``bench``: planner and control-tick speed, measured in one run on this machine.

The same planner network is sampled three ways: few-step DDIM from a warm start (what the
policy does on every replan after the first), few-step DDIM from noise, and DDPM with all
training steps (Decision Diffuser's way). The control tick is ``Policy.select_action`` on the
ticks between plans: inverse dynamics on the chosen sample's next state (``consistent``) or on every
sample's and their mean (``mean``), smoothing; timed back to back, and once per control period as
the node runs it (on a VM on a shared host a tick 10 ms after the last is two to three times slower
than one right after another, and the floor rows, one tiny op timed both ways, show whether the
machine is such a one). The sample selection is timed where it runs: in the planner, once per plan.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..core.checkpoint import load_invdyn, load_planner
from ..core.device import select_device
from ..core.metrics import measure_latency, percentiles_ms
from ..core.paths import share_path
from ..core.planning import Plan, Planning, PlanningConfig, PlanRequest
from ..core.policy import Policy, PolicyConfig
from ..core.selection import choose
from ..core.settings import setting
from ..sim import ArmConfig, ArmSim, ExpertConfig, ScriptedExpert, TaskConfig, run_episode, sample_task
from . import cli


@dataclass
class BenchConfig:
    """What to time and how often: the ``bench`` command line."""

    planner: str = setting(default_factory=lambda: str(share_path("models", "planner_final.pth")))
    """Diffusion planner checkpoint."""
    invdyn: str = setting(default_factory=lambda: str(share_path("models", "invdyn_enhanced_final.pth")))
    """Inverse dynamics checkpoint."""
    planning: PlanningConfig = field(default_factory=PlanningConfig)
    """How plans are drawn (the control tick is timed with 1 sample and with num_inference_samples)."""
    plan_iterations: int = setting(200, low=1)
    """Timed DDIM plans per variant."""
    ddpm_iterations: int = setting(20, low=1)
    """Timed DDPM plans (every training step)."""
    tick_iterations: int = setting(2000, low=1)
    """Timed control ticks per sample count, back to back."""
    paced_tick_iterations: int = setting(500, low=1)
    """Timed control ticks per sample count, one per control period."""
    control_period_s: float = setting(0.01, low=1e-4)
    """Period of the paced ticks (the node's 1 / control_rate_hz)."""
    threads: int = setting(1, low=1)
    """PyTorch intra-op threads (the node uses 1: the tick and the planner each get a core)."""
    device: str = "auto"
    """auto (CUDA when present), cpu, cuda or cuda:N."""


def recorded_states(sim: ArmSim, seconds: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Real states of an expert reach and its goal, so the timed inputs are in distribution."""
    q0, goal = sample_task(sim, np.random.default_rng(0), TaskConfig().goal_margin)
    expert = ScriptedExpert(sim, ExpertConfig(), np.random.default_rng(0))
    return run_episode(sim, expert, goal, q0, round(seconds / sim.dt)).states, goal


def time_plans(planning: Planning, request: PlanRequest, iterations: int, device: torch.device) -> dict[str, float]:
    def call() -> Plan:
        plan = planning(request)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return plan

    return percentiles_ms(measure_latency(call, iterations, warmup=min(10, iterations)))


def time_ticks(policy: Policy, states: np.ndarray, goal: np.ndarray, iterations: int,
               period_s: float = 0.0) -> dict[str, float]:
    """Tick latency between plans: replanning only every ``horizon`` ticks, plan ticks excluded;
    ticks start ``period_s`` apart, as from a timer (0: back to back)."""
    policy.reset()
    planned: list[bool] = []

    def tick() -> None:
        policy.select_action(states[len(planned) % len(states)], goal)
        planned.append(policy.status.plan_age_ticks == 0)

    total = iterations + iterations // (policy.horizon - 1) + 1  # one plan tick per horizon
    durations = measure_latency(tick, total, warmup=0, period_s=period_s)
    return percentiles_ms(durations[~np.array(planned)][:iterations])


def time_floor(period_s: float, iterations: int) -> dict[str, float]:
    """The machine's floor for any tick: one tiny PyTorch op. On a VM on a shared host even it is many
    times slower once per control period than back to back (caches cold after other guests ran)."""
    values = torch.zeros(6)
    return percentiles_ms(measure_latency(lambda: torch.add(values, 1.0), iterations, period_s=period_s))


def bench(config: BenchConfig) -> dict[str, dict[str, float]]:
    torch.set_num_threads(config.threads)
    device = select_device(config.device)
    sim = ArmSim(ArmConfig())
    planner = load_planner(config.planner, device, state_dim=sim.state_dim, goal_dim=sim.num_joints)
    invdyn = load_invdyn(config.invdyn, device, state_dim=sim.state_dim, action_dim=sim.action_dim)
    states, goal = recorded_states(sim)

    base = replace(config.planning, sampler="ddim")
    planning = Planning(planner)
    history = torch.as_tensor(states[50 - planner.config.n_obs_steps:50], dtype=torch.float32, device=device)
    goal_tensor = torch.as_tensor(goal, dtype=torch.float32, device=device)
    cold = PlanRequest(history, goal_tensor, origin_tick=50, previous=None, config=base)
    previous = planning(cold)
    warm = replace(cold, origin_tick=54, previous=previous)
    ddpm = replace(cold, config=replace(base, sampler="ddpm", warm_start=False))

    results = {
        f"plan ddim warm ({base.num_inference_samples} samples)": time_plans(planning, warm, config.plan_iterations,
                                                                                device),
        f"plan ddim cold {base.num_inference_steps} steps": time_plans(planning, cold, config.plan_iterations, device),
        f"plan ddpm {planner.config.num_train_timesteps} steps": time_plans(planning, ddpm, config.ddpm_iterations,
                                                                             device),
    }
    # What the planner chooses on after each plan: the samples, and what is left of the executed one.
    scaled = previous.states / planner.normalizer.state_std
    ahead = scaled[0, PolicyConfig().replan_every:]
    results["sample selection consistent (in the planner)"] = percentiles_ms(measure_latency(
        lambda: choose("consistent", scaled, ahead), config.tick_iterations))
    results["one tiny op (the floor)"] = time_floor(0.0, config.tick_iterations)
    results[f"one tiny op (the floor), one per {config.control_period_s * 1e3:g} ms"] = time_floor(
        config.control_period_s, config.paced_tick_iterations)
    # N samples: one chosen (consistent) against every one's action averaged (mean).
    variants = [(1, base.sample_selection)] + [(base.num_inference_samples, rule) for rule in ("consistent", "mean")]
    for samples, rule in variants:
        tick_config = PolicyConfig(replan_every=planner.config.horizon,
                                   planning=replace(base, num_inference_samples=samples, sample_selection=rule))
        policy = Policy.for_robot(planner, invdyn, tick_config, sim.description())
        name = f"control tick, {samples} sample(s)" + ("" if samples == 1 else f", {rule}")
        results[name] = time_ticks(policy, states, goal, config.tick_iterations)
        results[f"{name}, one per {config.control_period_s * 1e3:g} ms"] = time_ticks(
            policy, states, goal, config.paced_tick_iterations, config.control_period_s)

    ddpm_p50 = results[f"plan ddpm {planner.config.num_train_timesteps} steps"]["p50"]
    print(f"bench on {device}, {config.threads} thread(s), horizon {planner.config.horizon}")
    print("| measurement | p50 ms | p99 ms | ddpm p50 / p50 |")
    print("|---|---|---|---|")
    for name, values in results.items():
        ratio = f"{ddpm_p50 / values['p50']:.1f}x" if name.startswith("plan") else ""
        print(f"| {name} | {values['p50']:.3f} | {values['p99']:.3f} | {ratio} |")
    return results


def main(argv: list[str] | None = None) -> int:
    return cli.run(BenchConfig, bench, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
