"""Scripted-expert demonstrations on the simulated arm, as NPZ episodes (``tools.collect`` writes them).

Each episode starts at rest in a random configuration, reaches a random goal and holds it until
the fixed duration ends, so the data teaches holding as well as reaching.

Corrections (``policy_planner``, DAgger with an expert who takes over): a learned policy drives each
episode first, for a random time, then the expert takes over from wherever the policy brought the
arm; only the expert's part is recorded. A policy trained on demonstrations alone drifts into states
the expert never visited (a little behind, a little off the line) and, not having seen them, keeps
drifting; the corrections show the way back from exactly those states. Train on both files.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from tqdm import tqdm

from ..core.checkpoint import load_invdyn, load_planner
from ..core.data import Episodes
from ..core.paths import share_path
from ..core.policy import Policy, PolicyConfig
from ..core.settings import check, setting
from .arm import ArmConfig, ArmSim
from .expert import ExpertConfig, ScriptedExpert
from .task import EpisodeRecord, TaskConfig, run_episode
from .tasks import TASKS, Task


@dataclass
class CollectConfig:
    """Which demonstrations to collect."""

    task: str = setting("reach", choices=TASKS)
    """Which task: reach (random goals) or obstacle (past a keep-out disk, either way around)."""
    episodes: int = setting(200, low=1)
    """Number of episodes."""
    seed: int = 0
    """Seed of the starts, goals, expert gains and noise."""
    episode_seconds: float | None = setting(None, low=0.01)
    """Duration of every episode in seconds (unset: the task's, 4 s reaching, 5 s past the obstacle)."""
    noise_scale: float = setting(ExpertConfig.noise_scale, low=0.0)
    """Expert acceleration noise std in rad/s^2 (0: none)."""
    control_dt: float = setting(ArmConfig.control_dt, low=1e-4)
    """Control period in seconds (a multiple of the MuJoCo timestep)."""
    nearby_fraction: float = setting(0.3, low=0.0, high=1.0)
    """reach: fraction of episodes whose goal is near the rest start."""
    nearby_offset: float = setting(0.25, low=0.0)
    """reach: largest per-joint start-to-goal offset (rad) of those episodes."""
    policy_planner: str = ""
    """Corrections: a planner checkpoint; its policy drives each episode first, then the expert takes over and
    only the expert's part is recorded (unset: the expert drives throughout)."""
    policy_invdyn: str = setting(default_factory=lambda: str(share_path("models", "invdyn_enhanced_final.pth")))
    """Corrections: the inverse dynamics checkpoint of that policy."""
    takeover_seconds: float = setting(1.5, low=0.0)
    """Corrections: the expert takes over after a time drawn uniformly from [0, takeover_seconds]."""

    def __post_init__(self) -> None:
        check(self)


MAX_CORRECTION_TRIES = 5
"""Correction episodes that collide are drawn again, at most this many times the episodes asked for in all."""


class Takeover:
    """The learned policy drives for ``switch_tick`` ticks, then the expert."""

    def __init__(self, policy: Policy, expert: ScriptedExpert, switch_tick: int) -> None:
        self.policy, self.expert, self.switch_tick, self.tick = policy, expert, switch_tick, 0

    def __call__(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        driver = self.policy.select_action if self.tick < self.switch_tick else self.expert
        self.tick += 1
        return driver(state, goal)


def correction_policy(sim: ArmSim, config: CollectConfig) -> Policy:
    """The policy of ``config.policy_planner`` and ``config.policy_invdyn`` on ``sim``, as evaluate runs it."""
    planner = load_planner(config.policy_planner, state_dim=sim.state_dim, goal_dim=sim.num_joints)
    invdyn = load_invdyn(config.policy_invdyn, state_dim=sim.state_dim, action_dim=sim.action_dim)
    return Policy(planner, invdyn, PolicyConfig(), -sim.torque_limit, sim.torque_limit, sim.dt)


def since(record: EpisodeRecord, tick: int) -> EpisodeRecord:
    """The part of ``record`` from ``tick`` on."""
    reach = None if record.steps_to_reach is None else max(0, record.steps_to_reach - tick)
    return replace(record, states=record.states[tick:], actions=record.actions[tick:], goals=record.goals[tick:],
                   steps_to_reach=reach)


def collect_records(sim: ArmSim, config: CollectConfig, task: TaskConfig | None = None,
                    progress: bool = False) -> list[EpisodeRecord]:
    """Run the task's scripted expert from random rest starts to random goals, one fixed-length episode each
    (with ``config.policy_planner``: the policy first, the expert's part recorded)."""
    spec = collection_task(sim, config, task)
    seconds = config.episode_seconds or spec.episode_seconds
    num_steps = round(seconds / sim.dt)
    if num_steps < 1:
        raise ValueError(f"an episode of {seconds} s has no control period of {sim.dt} s")
    rng = np.random.default_rng(config.seed)
    expert = spec.expert(ExpertConfig(noise_scale=config.noise_scale), rng)
    policy = correction_policy(sim, config) if config.policy_planner else None
    longest_takeover = min(round(config.takeover_seconds / sim.dt), num_steps - 1)
    records = []
    with tqdm(total=config.episodes, desc="collect", unit="episode", disable=not progress) as bar:
        for _ in range(config.episodes * (1 if policy is None else MAX_CORRECTION_TRIES)):
            q0, goal = spec.sample(rng)
            expert.reset()
            if policy is None:
                record = run_episode(sim, expert, goal, q0, num_steps, spec.reach)
            else:
                policy.reset()
                switch_tick = int(rng.integers(0, longest_takeover + 1))
                record = since(run_episode(sim, Takeover(policy, expert, switch_tick), goal, q0, num_steps,
                                           spec.reach), switch_tick)
                if spec.collided(record.states):  # taken over too late to get around: not a demonstration
                    continue
            records.append(record)
            bar.update()
            if len(records) == config.episodes:
                break
    if len(records) < config.episodes:
        raise RuntimeError(f"the expert could take over without a collision in only {len(records)} of "
                           f"{config.episodes * MAX_CORRECTION_TRIES} episodes: shorten --takeover_seconds")
    return records


def collection_task(sim: ArmSim, config: CollectConfig, task: TaskConfig | None = None) -> Task:
    """The task ``config`` names, with its nearby goals for reaching."""
    return Task(config.task, sim, task or TaskConfig(), nearby_fraction=config.nearby_fraction,
                nearby_offset=config.nearby_offset)


def records_to_episodes(records: list[EpisodeRecord], dt: float, joint_names: list[str]) -> Episodes:
    """Concatenate rollouts into the flat ``Episodes`` format."""
    return Episodes(
        states=np.concatenate([record.states for record in records]),
        actions=np.concatenate([record.actions for record in records]),
        goals=np.concatenate([record.goals for record in records]),
        episode_ends=np.cumsum([len(record.states) for record in records]),
        dt=dt,
        joint_names=joint_names,
    )


def collect(config: CollectConfig | None = None, progress: bool = False) -> Episodes:
    """Expert demonstrations on the default arm, as ``config`` says."""
    config = config or CollectConfig()
    sim = ArmSim(ArmConfig(control_dt=config.control_dt))
    return records_to_episodes(collect_records(sim, config, progress=progress), sim.dt, sim.joint_names)
