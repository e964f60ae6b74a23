"""Planning a request into a plan, and planning off the control tick.

A ``PlanRequest`` (recent raw states, the goal, the plan to warm start from, the settings) becomes a
``Plan`` (raw future states, one row per sample) through ``Planning``, the diffusion planner with its
normalizer. A control tick never waits for that: a ``BackgroundPlanner`` takes requests and hands
back finished plans, in a thread (``PlanWorker``) or a process of its own (``plan_process.PlanProcess``).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from .planner import SAMPLERS, DiffusionPlanner, PlannerNetworks, shift_plan
from .selection import SAMPLE_SELECTIONS, choose
from .settings import check, setting


@dataclass
class PlanningConfig:
    """How each plan is drawn; every field may change between plans."""

    num_inference_samples: int = setting(8, low=1, high=256)
    """Plans drawn per replan, as one batch; sample_selection says which one is executed."""
    sample_selection: str = setting("consistent", choices=SAMPLE_SELECTIONS)
    """Which sampled plan is executed: consistent (the mode of the first plan, then the sample closest to the plan
    being executed), mode (the sample in the densest place, at every replan) or mean (every sample's action
    averaged, which on a task with two ways goes between them; for comparison)."""
    num_inference_steps: int = setting(5, low=1, high=1000)
    """DDIM denoising steps of a cold-start plan (a warm start runs the last fraction of them); at most the
    planner's training steps."""
    sampler: str = setting("ddim", choices=SAMPLERS)
    """ddim: few steps, warm started (the default); ddpm: every training step, Decision Diffuser's way, no warm
    start: hundreds of milliseconds per plan, for offline comparison, too slow for a control tick."""
    warm_start: bool = setting(True)
    """Start each plan from the previous one, shifted by the ticks executed and partially re-noised: faster and
    smoother."""
    ddpm_first_plan: bool = setting(False)
    """Draw the first plan after a start or reset (nothing to continue) with every training step of DDPM, the
    later ones as sampler says: the arm waits a few tenths of a second longer for it, and its samples take the
    ways apart more clearly on a task with several (see the README on the two-way task)."""
    plan_seed: int = setting(-1, low=-1, high=2**31 - 1)
    """Seed of every plan's noise (-1: fresh noise); seeded, a plan is a function of its inputs alone (for
    reproducible tests)."""

    def __post_init__(self) -> None:
        check(self)


@dataclass
class Plan:
    """Planned raw (unnormalized) states s_{o+1..o+H} made from the state at tick ``origin_tick``."""

    states: torch.Tensor
    """(N, H, S): one row per sample."""
    chosen: int | None
    """The sample to execute (``selection``); None: all of them, their actions averaged."""
    origin_tick: int
    """The tick whose state was the plan's current state; ``states[:, k]`` is due at tick origin + k."""
    seconds: float
    """Wall-clock time the planner took."""
    executed_states: np.ndarray = field(init=False, repr=False, compare=False)
    """(n, H, S) ``executed`` in NumPy, made with the plan: what the control tick reads (no PyTorch call there)."""

    def __post_init__(self) -> None:
        self.executed_states = self.executed.cpu().numpy()

    @property
    def executed(self) -> torch.Tensor:
        """(n, H, S) the samples whose actions are executed: the chosen one, or all of them."""
        return self.states if self.chosen is None else self.states[self.chosen : self.chosen + 1]


@dataclass
class PlanRequest:
    """What a plan is made from."""

    history: torch.Tensor
    """(n_obs_steps, S) raw recent states, ending with the current one."""
    goal: torch.Tensor | None
    """(G,) raw goal (None for a planner without goals)."""
    origin_tick: int
    """The tick of the current state (the last of ``history``)."""
    previous: Plan | None
    """The plan to warm start from (None: cold start)."""
    config: PlanningConfig
    """How to draw the plans."""


class Planning:
    """Turns a ``PlanRequest`` into a ``Plan`` with the diffusion planner (no threading here); its networks run
    in ``networks`` (``runtime.load_planner_networks``; None: PyTorch)."""

    def __init__(self, planner: DiffusionPlanner, networks: PlannerNetworks | None = None) -> None:
        self.planner = planner
        self.networks = networks
        self.normalizer = planner.normalizer

    def _generator(self, seed: int) -> torch.Generator | None:
        if seed < 0:
            return None
        return torch.Generator(device=self.normalizer.state_mean.device).manual_seed(seed)

    @torch.inference_mode()
    def __call__(self, request: PlanRequest) -> Plan:
        started = time.perf_counter()
        config, previous, normalizer = request.config, request.previous, self.normalizer
        current = request.history[-1]
        history = normalizer.normalize_state(request.history)[None]
        goal = None if request.goal is None else normalizer.normalize_goal_error(request.goal, current)[None]
        ahead = None  # the previous plan's states still to come, per sample
        if previous is not None:
            ahead = shift_plan(previous.states, request.origin_tick - previous.origin_tick)
        sampler = "ddpm" if ahead is None and config.ddpm_first_plan else config.sampler
        warm_start = None
        if config.warm_start and sampler == "ddim" and ahead is not None:
            warm_start = normalizer.normalize_plan(self._warm_start_rows(ahead, previous.chosen, config), current)[None]
        steps = config.num_inference_steps if sampler == "ddim" else None
        plans = self.planner.sample(history, goal, config.num_inference_samples, steps,
                                    warm_start, sampler=sampler, generator=self._generator(config.plan_seed),
                                    networks=self.networks)
        states = normalizer.unnormalize_plan(plans[0], current)
        if not np.isfinite(states.cpu().numpy()).all():  # NumPy: a third of PyTorch's time on a plan this small
            raise FloatingPointError("planner produced non-finite states")
        committed = None
        if ahead is not None and previous.chosen is not None:
            elapsed = request.origin_tick - previous.origin_tick
            committed = ahead[previous.chosen, : max(0, ahead.shape[1] - elapsed)] / normalizer.state_std
        chosen = choose(config.sample_selection, states / normalizer.state_std, committed)
        return Plan(states, chosen, request.origin_tick, time.perf_counter() - started)

    @staticmethod
    def _warm_start_rows(ahead: torch.Tensor, chosen: int | None, config: PlanningConfig) -> torch.Tensor:
        """What the samples start from: the executed sample for all (a committed way is continued), or with
        ``mean`` each its own predecessor (their mean when the sample count changed)."""
        if chosen is not None:
            return ahead[chosen]
        return ahead if len(ahead) == config.num_inference_samples else ahead.mean(0)


class BackgroundPlanner(Protocol):
    """Plans off the tick: ``PlanWorker`` (a thread) or ``plan_process.PlanProcess`` (a process)."""

    def submit(self, request: PlanRequest) -> None:
        """Ask for a plan; never waits for planning. A newer request replaces one not yet started."""

    @property
    def pending(self) -> bool:
        """A request waits or is being planned."""

    def latest(self) -> tuple[Plan | None, str | None]:
        """The newest finished plan and the error of the newest failed attempt (None after a success)."""

    def reset(self) -> None:
        """Forget plans and requests; a plan still being made is discarded when it lands."""

    def close(self) -> None:
        """Stop planning and release the thread or process."""


class PlanWorker:
    """Plans in a background thread. ``submit`` and ``latest`` never block on planning.

    Only the newest request is kept: a request submitted while another is pending replaces it.
    """

    def __init__(self, planning: Planning) -> None:
        self._planning = planning
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._request: PlanRequest | None = None
        self._busy = False
        self._latest: Plan | None = None
        self._error: str | None = None
        self._closed = False
        self._generation = 0  # bumped by reset: a plan still in flight then is discarded when it lands
        self._thread = threading.Thread(target=self._run, name="plan_worker", daemon=True)
        self._thread.start()

    def submit(self, request: PlanRequest) -> None:
        with self._lock:
            self._request = request
            self._wake.notify()

    @property
    def pending(self) -> bool:
        """A request waits or is being planned."""
        with self._lock:
            return self._request is not None or self._busy

    def latest(self) -> tuple[Plan | None, str | None]:
        """The newest finished plan and the error of the newest failed attempt (None after a success)."""
        with self._lock:
            return self._latest, self._error

    def reset(self) -> None:
        with self._lock:
            self._request, self._latest, self._error = None, None, None
            self._generation += 1

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._request is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                request, self._request, self._busy = self._request, None, True
                generation = self._generation
            try:
                plan, error = self._planning(request), None
            except Exception as exc:  # noqa: BLE001 - any planner failure must end in a safe command
                plan, error = None, f"planner failed: {type(exc).__name__}: {exc}"
            with self._lock:
                self._busy = False
                if generation != self._generation:
                    continue
                if plan is not None and (self._latest is None or plan.origin_tick >= self._latest.origin_tick):
                    self._latest = plan
                self._error = error
