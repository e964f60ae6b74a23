"""The policy: plan the next states with the diffusion planner, act with inverse dynamics.

``Policy.select_action(state, goal)`` is the control tick. It keeps the rolling state history,
asks for a new plan every ``replan_every`` ticks (inline, or from a background planner that
the tick never waits for: a ``PlanWorker`` thread or a ``plan_process.PlanProcess``), takes the
planned state for the next control period, turns it into an action with the inverse dynamics
model and smooths it. A failure anywhere on that path returns the safe command (hold the last
command) and says why in ``Policy.status``. A controller splits the tick in two: ``act`` makes
the command, ``plan_ahead`` trades requests and plans with the background planner after the
command is sent.

How the ``num_inference_samples`` plans become one action: each sampled plan's next state gives
one action from the inverse dynamics model (one batch), and the executed action is their mean in
normalized action units, the Monte-Carlo estimate of the expected action under the planner.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import torch

from .invdyn import InvDynamic
from .planner import SAMPLERS, DiffusionPlanner, shift_plan
from .smoothing import ActionSmoother, SmootherConfig


def actions_from_plan(inv_dyn_model: InvDynamic, history: torch.Tensor, next_states: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """Mean action over the sampled next states, all in the model's normalized units.

    history (B, L, S), next_states (B, N, S) -> (B, A): the N samples share their row's history.
    """
    return inv_dyn_model.forward_samples(history, next_states, temperature).mean(dim=1)


@torch.inference_mode()
def generate_actions_with_enhanced_invdyn(
    diffusion_model: DiffusionPlanner,
    inv_dyn_model: InvDynamic,
    norm_batch: dict[str, torch.Tensor],
    norm_current_state: torch.Tensor,
    num_inference_samples: int = 8,
    temperature: float = 0.0,
    use_probabilistic_sampling: bool = False,
    num_inference_steps: int | None = None,
) -> torch.Tensor:
    """The seed's one-shot API: plan, then act on the first planned state. Works with every model type.

    norm_batch: ``history`` (B, n_obs_steps, S) normalized states and ``goal`` (B, G) the normalized
    goal error, as the planner's normalizer makes them (``normalize_state``, ``normalize_goal_error``).
    norm_current_state: (B, S) current state or (B, L, S) recent states, normalized for the
    inverse dynamics model. Both models carry the normalizers their loaders attach.
    Returns (B, A) normalized actions; ``temperature`` applies only with probabilistic sampling.
    """
    plans = diffusion_model.sample(norm_batch["history"], norm_batch.get("goal"), num_inference_samples,
                                   num_inference_steps)
    planner_units, invdyn_units = diffusion_model.normalizer, inv_dyn_model.normalizer
    current = planner_units.unnormalize_state(norm_batch["history"][:, -1])
    next_states = planner_units.unnormalize_plan(plans, current.unsqueeze(1))[:, :, 0]
    history = norm_current_state if norm_current_state.ndim == 3 else norm_current_state.unsqueeze(1)
    return actions_from_plan(inv_dyn_model, history, invdyn_units.normalize_state(next_states),
                             temperature if use_probabilistic_sampling else 0.0)


SAFE_MODES = ("hold", "zero")


@dataclass
class PolicyConfig:
    """Run-time settings of the policy; every field may change between ticks (``Policy.configure``)."""

    temperature: float = 0.0
    """Sampling temperature of a probabilistic inverse dynamics model (0: its mean)."""
    use_probabilistic_sampling: bool = False
    """Sample actions from a probabilistic model at ``temperature``; False uses its mean."""
    num_inference_samples: int = 8
    """Plans drawn per replan, as one batch; their actions are averaged."""
    num_inference_steps: int = 5
    """DDIM denoising steps of a cold-start plan (a warm start runs the last fraction of them)."""
    sampler: str = "ddim"
    """``ddim`` (few steps, the default) or ``ddpm`` (all training steps, Decision Diffuser's way; no warm start)."""
    warm_start: bool = True
    """Start each plan from the previous one, shifted by the ticks executed and partially re-noised."""
    replan_every: int = 4
    """Ticks between plans (receding horizon); at most the planner's horizon."""
    plan_seed: int = -1
    """Seed of every plan's noise (-1: unseeded); a seeded plan is a function of its inputs alone."""
    safe_mode: str = "hold"
    """The safe command: ``hold`` the last command or ramp to ``zero`` (both through the slew limit)."""
    smoothing: SmootherConfig = field(default_factory=SmootherConfig)
    """Low-pass, slew limit and clamp applied to every command, the safe command included."""

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.safe_mode not in SAFE_MODES:
            raise ValueError(f"safe_mode must be one of {SAFE_MODES}, got {self.safe_mode!r}")
        if not (math.isfinite(self.temperature) and self.temperature >= 0.0):
            raise ValueError(f"temperature must be finite and >= 0, got {self.temperature}")
        if self.plan_seed < -1:
            raise ValueError(f"plan_seed must be >= -1, got {self.plan_seed}")
        for name in ("num_inference_samples", "num_inference_steps", "replan_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class Plan:
    """Planned raw (unnormalized) states s_{o+1..o+H} made from the state at tick ``origin_tick``."""

    states: torch.Tensor
    """(N, H, S): one row per sample."""
    origin_tick: int
    """The tick whose state was the plan's current state; ``states[:, k]`` is due at tick origin + k."""
    seconds: float
    """Wall-clock time the planner took."""


@dataclass
class PlanRequest:
    history: torch.Tensor
    """(n_obs_steps, S) raw recent states, ending with the current one."""
    goal: torch.Tensor | None
    """(G,) raw goal (None for a planner without goals)."""
    origin_tick: int
    previous: Plan | None
    """The plan to warm start from (None: cold start)."""
    config: PolicyConfig


class Planning:
    """Turns a ``PlanRequest`` into a ``Plan`` with the diffusion planner (no threading here)."""

    def __init__(self, planner: DiffusionPlanner) -> None:
        self.planner = planner
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
        warm_start = None
        if config.warm_start and config.sampler == "ddim" and previous is not None:
            shifted = normalizer.normalize_plan(shift_plan(previous.states, request.origin_tick - previous.origin_tick),
                                                current)
            # Per-sample warm start when the sample count is unchanged, else their mean.
            warm_start = shifted[None] if len(shifted) == config.num_inference_samples else shifted.mean(0)[None]
        steps = config.num_inference_steps if config.sampler == "ddim" else None
        plans = self.planner.sample(history, goal, config.num_inference_samples, steps,
                                    warm_start, sampler=config.sampler, generator=self._generator(config.plan_seed))
        states = normalizer.unnormalize_plan(plans[0], current)
        if not torch.isfinite(states).all():
            raise FloatingPointError("planner produced non-finite states")
        return Plan(states, request.origin_tick, time.perf_counter() - started)


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


@dataclass
class TickStatus:
    """What the last tick did; read by the node for diagnostics."""

    ok: bool = False
    """True when the command came from the policy, False when it is the safe command."""
    reason: str = "no tick yet"
    """Why the safe command was used (empty when ok)."""
    plan_age_ticks: int = -1
    """Ticks since the used plan's current state (-1: no plan)."""
    plan_seconds: float = math.nan
    """Planner time of the used plan."""


class Policy:
    """Receding-horizon control with a diffusion planner and an inverse dynamics model.

    Without a ``worker`` it plans inline on the tick that needs it (deterministic, for offline
    evaluation); with one (a ``BackgroundPlanner``) the tick submits requests and uses the newest
    finished plan, falling back to the safe command when there is none young enough. The policy
    owns the worker from then on (``reset`` and ``close`` reach it).
    """

    def __init__(self, planner: DiffusionPlanner, invdyn: InvDynamic, config: PolicyConfig,
                 action_low: np.ndarray, action_high: np.ndarray, dt: float,
                 worker: BackgroundPlanner | None = None) -> None:
        if planner.config.state_dim != invdyn.config.state_dim:
            raise ValueError(f"planner state_dim {planner.config.state_dim} != invdyn state_dim "
                             f"{invdyn.config.state_dim}")
        self.planner, self.invdyn = planner, invdyn
        self.device = next(invdyn.parameters()).device
        self.history_length = max(planner.config.n_obs_steps, invdyn.config.seq_length)
        self._history = torch.zeros(self.history_length, invdyn.config.state_dim, device=self.device)
        self._planning = Planning(planner)
        self._worker = worker
        self.smoother = ActionSmoother(config.smoothing, dt, action_low, action_high)
        self._zero_action = np.zeros(invdyn.config.action_dim)
        self.configure(config)
        self.reset()

    @property
    def horizon(self) -> int:
        return self.planner.config.horizon

    @property
    def plan(self) -> Plan | None:
        """The plan the last tick used or fetched (None after ``reset``)."""
        return self._plan

    def configure(self, config: PolicyConfig) -> None:
        """Apply new run-time settings from the next tick on (the smoother keeps its state)."""
        if config.replan_every > self.horizon:
            raise ValueError(f"replan_every {config.replan_every} exceeds the planner horizon {self.horizon}")
        self.config = config
        self.smoother.configure(config.smoothing)

    def reset(self, initial_action: np.ndarray | None = None) -> None:
        """Forget history and plans (a new episode, or input resumed after a fault)."""
        self._tick = 0
        self._plan: Plan | None = None
        self._plan_error: str | None = None  # the background planner's, until a plan succeeds
        self._state_tick: int | None = None  # the tick whose state the last act took (for plan_ahead)
        self._history_filled = False
        self.smoother.reset(initial_action)
        self.status = TickStatus()
        if self._worker is not None:
            self._worker.reset()

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()

    def safe_action(self, reason: str) -> np.ndarray:
        """The configured safe command, through the smoother like any other, recording why."""
        self.status = TickStatus(False, reason, self.status.plan_age_ticks, self.status.plan_seconds)
        target = self._zero_action if self.config.safe_mode == "zero" else self.smoother.output
        return self.smoother(target).copy()

    def _push_state(self, state: torch.Tensor) -> None:
        if not self._history_filled:
            self._history[:] = state  # a robot at rest before the first observation
            self._history_filled = True
        else:
            self._history[:-1] = self._history[1:].clone()
            self._history[-1] = state

    def _request(self, goal: np.ndarray | None, origin_tick: int) -> PlanRequest:
        history = self._history[-self.planner.config.n_obs_steps:].clone()
        goal_tensor = None
        if self.planner.config.goal_dim:
            goal_tensor = torch.as_tensor(goal, dtype=torch.float32, device=self.device)
        return PlanRequest(history, goal_tensor, origin_tick, self._plan, replace(self.config))

    def _due(self, tick: int) -> bool:
        return self._plan is None or tick - self._plan.origin_tick >= self.config.replan_every

    def select_action(self, state: np.ndarray, goal: np.ndarray | None) -> np.ndarray:
        """The command for this tick: (A,) in action units, smoothed and clamped (``act``, then
        ``plan_ahead``). Never raises."""
        command = self.act(state, goal)
        self.plan_ahead(goal)
        return command

    @torch.inference_mode()
    def act(self, state: np.ndarray, goal: np.ndarray | None) -> np.ndarray:
        """The part of a tick the command waits for: (A,) from the plan at hand, smoothed and clamped.

        Without a background planner it plans here when a plan is due; with one, taking finished
        plans and asking for new ones is ``plan_ahead``'s, which a controller calls once the command
        is sent (a plan then serves from the tick after it arrives). Never raises.
        """
        self._state_tick = None
        try:
            # Checked in NumPy: on a handful of numbers it is several times cheaper than PyTorch.
            if np.shape(state) != (self._history.shape[1],) or not np.isfinite(state).all():
                return self.safe_action("invalid state")
            if goal is not None and not np.isfinite(goal).all():
                return self.safe_action("invalid goal")
            self._push_state(torch.as_tensor(state, dtype=torch.float32, device=self.device))
            tick = self._tick
            self._tick += 1
            if self._worker is None:
                if self._due(tick):
                    self._plan = self._planning(self._request(goal, tick))
            else:
                self._state_tick = tick
                if self._plan_error is not None:
                    return self.safe_action(self._plan_error)
            plan = self._plan
            if plan is None:
                return self.safe_action("waiting for the first plan")
            age = tick - plan.origin_tick
            if age >= self.horizon:
                return self.safe_action(f"plan is {age} ticks old, beyond the horizon")
            normalizer = self.invdyn.normalizer
            history = normalizer.normalize_state(self._history[-self.invdyn.config.seq_length:])[None]
            next_states = normalizer.normalize_state(plan.states[:, age])[None]
            temperature = self.config.temperature if self.config.use_probabilistic_sampling else 0.0
            action = normalizer.unnormalize_action(actions_from_plan(self.invdyn, history, next_states, temperature))[0]
            action = action.cpu().numpy()
            if not np.all(np.isfinite(action)):
                return self.safe_action("inverse dynamics output is not finite")
            self.status = TickStatus(True, "", age, plan.seconds)
            return self.smoother(action).copy()
        except Exception as exc:  # noqa: BLE001 - the tick must always end in a command
            return self.safe_action(f"{type(exc).__name__}: {exc}")

    @torch.inference_mode()
    def plan_ahead(self, goal: np.ndarray | None) -> None:
        """With a background planner: take the plans it finished, and ask for the next one from the
        state the last ``act`` took when one is due (also a retry after a failed attempt). Its
        pickling and piping cost the tick nothing once the command is sent. Never raises."""
        tick, self._state_tick = self._state_tick, None
        if self._worker is None or tick is None:
            return
        try:
            self._plan, self._plan_error = self._worker.latest()
            if self._due(tick) and not self._worker.pending:
                self._worker.submit(self._request(goal, tick))
        except Exception as exc:  # noqa: BLE001 - a failure here must show as a safe command, not a crash
            self._plan_error = f"planning failed: {type(exc).__name__}: {exc}"
