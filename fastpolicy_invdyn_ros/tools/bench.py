"""``bench``: planner and control-tick speed per runtime (PyTorch, ONNX Runtime), side by side in one run.

The same planner network is sampled three ways: few-step DDIM from a warm start (what the
policy does on every replan after the first), few-step DDIM from noise, and DDPM with all
training steps (Decision Diffuser's way). The control tick is ``Policy.select_action`` on the
ticks between plans: inverse dynamics on the chosen sample's next state (``tick``, the default
``consistent``) or on every sample's and their mean (``tick_mean``, ``mean``), smoothing; timed back
to back, and once per control period as the node runs it, at its SCHED_FIFO priority (on a VM on a
shared host a tick 10 ms after the last is two to three times slower than one right after another,
and the floor rows, one tiny op timed both ways, show whether the machine is such a one). Each
runtime's models are chosen as the node chooses them (``core.runtime``); every row also shows its p50
against PyTorch's. The sample selection is timed where it runs: in the planner, once per plan; the
temporal ensemble's blend (``ensemble_decay``) as the tick adds it, over the plans a tick at the default
``replan_every`` overlaps.
``--json`` writes the rows for machines.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..core.checkpoint import load_invdyn, load_planner
from ..core.device import select_device
from ..core.ensemble import PlanEnsemble
from ..core.files import write_text_atomic
from ..core.metrics import measure_latency, percentiles_ms
from ..core.paths import share_path
from ..core.planning import Plan, Planning, PlanningConfig, PlanRequest
from ..core.policy import Policy, PolicyConfig
from ..core.runtime import RUNTIMES, load_action_step, load_planner_networks
from ..core.selection import choose
from ..core.settings import setting
from ..ros.realtime import fifo_priority
from ..sim import ArmConfig, ArmSim, ExpertConfig, ScriptedExpert, TaskConfig, run_episode, sample_task
from . import cli


@dataclass
class BenchConfig:
    """What to time and how often: the ``bench`` command line."""

    planner: str = setting(default_factory=lambda: str(share_path("models", "planner_final.pth")))
    """Diffusion planner checkpoint."""
    invdyn: str = setting(default_factory=lambda: str(share_path("models", "invdyn_enhanced_final.pth")))
    """Inverse dynamics checkpoint."""
    runtime: list[str] = setting(["torch", "onnxruntime"])
    """Runtimes to time side by side: torch, onnxruntime (needs the models' ONNX exports: export_onnx), auto (what
    the node would choose)."""
    planning: PlanningConfig = field(default_factory=PlanningConfig)
    """How plans are drawn (the control tick is timed with num_inference_samples)."""
    plan_iterations: int = setting(200, low=1)
    """Timed DDIM plans per variant."""
    ddpm_iterations: int = setting(20, low=1)
    """Timed DDPM plans (every training step)."""
    tick_iterations: int = setting(2000, low=1)
    """Timed control ticks per variant, back to back."""
    paced_tick_iterations: int = setting(500, low=1)
    """Timed control ticks per variant, one per control period."""
    control_period_s: float = setting(0.01, low=1e-4)
    """Period of the paced ticks (the node's 1 / control_rate_hz)."""
    thread_priority: int = setting(50, low=0, high=99)
    """SCHED_FIFO priority of the paced ticks, as the node's thread_priority runs its tick (0: normal scheduling;
    without root, CAP_SYS_NICE or an rtprio limit they run normally, and the table says so)."""
    threads: int = setting(1, low=1)
    """PyTorch intra-op threads (the node uses 1: the tick and the planner each get a core)."""
    device: str = "auto"
    """auto (CUDA when present), cpu, cuda or cuda:N."""
    json: str | None = None
    """Also write the rows to this file: a JSON list of {runtime, what, p50_ms, p99_ms}."""

    def __post_init__(self) -> None:
        if not self.runtime or not set(self.runtime) <= set(RUNTIMES):
            raise ValueError(f"runtime must be among {list(RUNTIMES)}, got {self.runtime}")


@dataclass
class Row:
    """One timing, as ``--json`` writes it."""

    runtime: str
    """torch or onnxruntime; numpy for the policy's own NumPy work on the tick (plan_ensemble)."""
    what: str
    """What was timed: plan_ddim_warm, plan_ddim_cold, plan_ddpm_<T>, tick_back_to_back, tick_paced,
    tick_mean_back_to_back, tick_mean_paced, sample_selection, plan_ensemble, floor_back_to_back,
    floor_paced."""
    p50_ms: float
    p99_ms: float


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


def time_ensemble(plan: Plan, iterations: int) -> dict[str, float]:
    """What ``ensemble_decay`` adds to a tick: blending the chosen sample's next state over every plan overlapping it
    at the default ``replan_every`` (the same plan's states stand in for the older plans')."""
    replan_every, horizon = PolicyConfig().replan_every, plan.states.shape[1]
    ensemble = PlanEnsemble(horizon, plan.states.shape[2])
    chosen = replace(plan, chosen=0)
    for origin in range(0, horizon, replan_every):
        ensemble.add(replace(chosen, origin_tick=origin))
    tick = horizon - 1
    return percentiles_ms(measure_latency(lambda: ensemble.states(tick, 0.5), iterations))


def _row(runtime: str, what: str, values: dict[str, float]) -> Row:
    return Row(runtime, what, values["p50"], values["p99"])


def bench(config: BenchConfig) -> list[Row]:
    torch.set_num_threads(config.threads)
    device = select_device(config.device)
    sim = ArmSim(ArmConfig())
    planner = load_planner(config.planner, device, state_dim=sim.state_dim, goal_dim=sim.num_joints)
    invdyn = load_invdyn(config.invdyn, device, state_dim=sim.state_dim, action_dim=sim.action_dim)
    states, goal = recorded_states(sim)

    base = replace(config.planning, sampler="ddim")
    history = torch.as_tensor(states[50 - planner.config.n_obs_steps:50], dtype=torch.float32, device=device)
    goal_tensor = torch.as_tensor(goal, dtype=torch.float32, device=device)
    cold = PlanRequest(history, goal_tensor, origin_tick=50, previous=None, config=base)
    previous = Planning(planner)(cold)
    warm = replace(cold, origin_tick=54, previous=previous)
    ddpm = replace(cold, config=replace(base, sampler="ddpm", warm_start=False))
    ddpm_name = f"plan_ddpm_{planner.config.num_train_timesteps}"

    rows: list[Row] = []
    timed: set[str] = set()
    for requested in config.runtime:
        networks, planner_choice = load_planner_networks(planner, config.planner, requested, device)
        action_step, invdyn_choice = load_action_step(invdyn, config.invdyn, requested, device)
        cli.report_runtime("planner", planner_choice)
        cli.report_runtime("invdyn", invdyn_choice)
        runtime = invdyn_choice.runtime if invdyn_choice.runtime == planner_choice.runtime else "mixed"
        if runtime in timed:  # auto chose a runtime timed already
            continue
        timed.add(runtime)
        planning = Planning(planner, networks)
        rows += [_row(runtime, "plan_ddim_warm", time_plans(planning, warm, config.plan_iterations, device)),
                 _row(runtime, "plan_ddim_cold", time_plans(planning, cold, config.plan_iterations, device)),
                 _row(runtime, ddpm_name, time_plans(planning, ddpm, config.ddpm_iterations, device))]
        for name, rule in (("tick", base.sample_selection), ("tick_mean", "mean")):
            tick_config = PolicyConfig(replan_every=planner.config.horizon,
                                       planning=replace(base, sample_selection=rule))
            policy = Policy.for_robot(planner, invdyn, tick_config, sim.description(), action_step=action_step,
                                      planning=planning)
            rows.append(_row(runtime, f"{name}_back_to_back", time_ticks(policy, states, goal, config.tick_iterations)))
            with fifo_priority(config.thread_priority):
                rows.append(_row(runtime, f"{name}_paced", time_ticks(policy, states, goal,
                                                                      config.paced_tick_iterations,
                                                                      config.control_period_s)))
    # Runtime-independent PyTorch work: what the planner chooses on after each plan, and the machine's floor.
    scaled = previous.states / planner.normalizer.state_std
    ahead = scaled[0, PolicyConfig().replan_every:]
    rows.append(_row("torch", "sample_selection", percentiles_ms(measure_latency(
        lambda: choose("consistent", scaled, ahead), config.tick_iterations))))
    rows.append(_row("numpy", "plan_ensemble", time_ensemble(previous, config.tick_iterations)))
    rows.append(_row("torch", "floor_back_to_back", time_floor(0.0, config.tick_iterations)))
    with fifo_priority(config.thread_priority) as fifo:
        rows.append(_row("torch", "floor_paced", time_floor(config.control_period_s, config.paced_tick_iterations)))
    print_table(rows, config, device, ddpm_name, fifo)
    if config.json is not None:
        write_text_atomic(Path(config.json), json.dumps([asdict(row) for row in rows], indent=1) + "\n")
    return rows


def print_table(rows: list[Row], config: BenchConfig, device: torch.device, ddpm_name: str, fifo: bool) -> None:
    """Markdown: each row's p50 against PyTorch's for the same measurement and, for plans, DDPM's against it."""
    p50 = {(row.runtime, row.what): row.p50_ms for row in rows}
    scheduling = f"SCHED_FIFO {config.thread_priority}" if fifo else "normal scheduling"
    print(f"bench on {device}, {config.threads} thread(s), {config.planning.num_inference_samples} samples, "
          f"ticks paced at {config.control_period_s * 1e3:g} ms under {scheduling}")
    print("| runtime | measurement | p50 ms | p99 ms | p50 / torch p50 | ddpm p50 / p50 |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        torch_p50 = p50.get(("torch", row.what))
        against_torch = f"{row.p50_ms / torch_p50:.2f}" if torch_p50 else ""
        ddpm_p50 = p50.get((row.runtime, ddpm_name))
        against_ddpm = f"{ddpm_p50 / row.p50_ms:.1f}x" if row.what.startswith("plan") and ddpm_p50 else ""
        print(f"| {row.runtime} | {row.what} | {row.p50_ms:.3f} | {row.p99_ms:.3f} | {against_torch} "
              f"| {against_ddpm} |")


def main(argv: list[str] | None = None) -> int:
    return cli.run(BenchConfig, bench, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
