"""The policy: plan the next states with the diffusion planner, act with inverse dynamics.

``Policy.select_action(state, goal)`` is the control tick. It keeps the rolling state history,
asks for a new plan every ``replan_every`` ticks (inline, or from a ``planning.BackgroundPlanner``
that the tick never waits for), takes the planned state for the next control period, turns it into
an action with the inverse dynamics model (``actions.ActionStep``: PyTorch or ONNX Runtime, ``runtime``)
and smooths it. A failure anywhere on that path returns the safe command (``safety``) and says why in
``Policy.status``. A controller splits the tick in two: ``act`` makes the command, ``plan_ahead``
trades requests and plans with the background planner after the command is sent.

How the ``num_inference_samples`` plans become one action (``sample_selection``): with ``consistent`` (the
default) or ``mode`` the planner chooses one sample (``selection``), never their mean, which on a task with
two ways around an obstacle goes through it, and that sample's next state gives the action; with ``mean``
every sample's next state gives an action and their mean is executed. With
``ensemble_decay`` above 0 that next state is first blended with what the older plans still covering the
tick say for it (``ensemble``, as ACT does).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .actions import ActionStep, TorchActionStep
from .ensemble import PlanEnsemble
from .invdyn import InvDynamic
from .planner import DiffusionPlanner
from .planning import BackgroundPlanner, Plan, Planning, PlanningConfig, PlanRequest
from .robot import COMMAND_INTERFACES, RobotDescription
from .safety import SafetyConfig
from .settings import check, setting
from .smoothing import ActionSmoother, SmootherConfig


@dataclass
class PolicyConfig:
    """Run-time settings of the policy; every field may change between ticks (``Policy.configure``)."""

    temperature: float = setting(0.0, low=0.0, high=10.0)
    """Sampling temperature of a probabilistic inverse dynamics model (0: its mean); used with
    use_probabilistic_sampling."""
    use_probabilistic_sampling: bool = setting(False)
    """Sample actions at temperature from a probabilistic inverse dynamics model; false uses its mean."""
    replan_every: int = setting(4, low=1, high=256)
    """Control ticks between plans (receding horizon), at most the planner's horizon."""
    ensemble_decay: float = setting(0.0, low=0.0, high=1.0)
    """Temporal ensembling, as ACT does: the tick acts on the blend of what the recent plans covering it say for
    its next state, each plan weighted this factor times the next newer one's; 0: the newest plan alone."""
    planning: PlanningConfig = field(default_factory=PlanningConfig)
    """How each plan is drawn."""
    smoothing: SmootherConfig = field(default_factory=SmootherConfig)
    """Low-pass, slew limit and clamp applied to every command, the safe command included."""
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    """The safe command and when it is used."""

    def __post_init__(self) -> None:
        check(self)


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
                 worker: BackgroundPlanner | None = None, interface: str = "effort",
                 rate_limit: np.ndarray | None = None, action_step: ActionStep | None = None,
                 planning: Planning | None = None) -> None:
        """``interface``: what the actions command (``robot.COMMAND_INTERFACES``; with ``position`` the
        state's first entries are the joints' positions); ``rate_limit``: the largest change per second of
        each command (for position, the joints' velocity limits); ``action_step``: what runs ``invdyn`` on the
        tick (None: PyTorch); ``planning``: what plans inline without a worker (None: ``planner`` in PyTorch)."""
        if planner.config.state_dim != invdyn.config.state_dim:
            raise ValueError(f"planner state_dim {planner.config.state_dim} != invdyn state_dim "
                             f"{invdyn.config.state_dim}")
        self.planner, self.invdyn = planner, invdyn
        self.device = next(invdyn.parameters()).device
        self.history_length = max(planner.config.n_obs_steps, invdyn.config.seq_length)
        # NumPy, not a tensor: each tick shifts it and reads it, a few NumPy copies against several PyTorch calls.
        self._history = np.zeros((self.history_length, invdyn.config.state_dim), np.float32)
        self._planning = Planning(planner) if planning is None else planning
        self._ensemble = PlanEnsemble(planner.config.horizon, invdyn.config.state_dim)
        self._action_step = TorchActionStep(invdyn) if action_step is None else action_step
        self._worker = worker
        if interface not in COMMAND_INTERFACES:
            raise ValueError(f"interface must be one of {COMMAND_INTERFACES}, got {interface!r}")
        self.interface = interface
        self.smoother = ActionSmoother(config.smoothing, dt, action_low, action_high, rate_limit)
        self._zero_action = np.zeros(invdyn.config.action_dim)
        self._measured = np.zeros(invdyn.config.action_dim)  # position interface: the last valid state's positions
        self._measured_known = False
        self.configure(config)
        self.reset()

    @classmethod
    def for_robot(cls, planner: DiffusionPlanner, invdyn: InvDynamic, config: PolicyConfig, robot: RobotDescription,
                  worker: BackgroundPlanner | None = None, action_step: ActionStep | None = None,
                  planning: Planning | None = None) -> Policy:
        """A policy commanding ``robot`` through its interface within its command limits (a position moving at
        most each joint's velocity limit per period); the other arguments as ``__init__``'s."""
        rate_limit = robot.velocity_limit if robot.command_interface == "position" else None
        return cls(planner, invdyn, config, np.array(robot.command_low), np.array(robot.command_high),
                   robot.control_dt, worker, interface=robot.command_interface,
                   rate_limit=None if rate_limit is None else np.array(rate_limit), action_step=action_step,
                   planning=planning)

    @property
    def horizon(self) -> int:
        return self.planner.config.horizon

    @property
    def plan(self) -> Plan | None:
        """The plan the last tick used or fetched (None after ``reset``)."""
        return self._plan

    def check(self, config: PolicyConfig) -> None:
        """Raise ValueError when ``config`` does not fit these models (its own ranges are checked already)."""
        if config.replan_every > self.horizon:
            raise ValueError(f"replan_every {config.replan_every} exceeds the planner horizon {self.horizon}")
        training_steps = self.planner.config.num_train_timesteps
        if config.planning.num_inference_steps > training_steps:
            raise ValueError(f"num_inference_steps {config.planning.num_inference_steps} exceeds the planner's "
                             f"{training_steps} training steps")

    def configure(self, config: PolicyConfig) -> None:
        """Apply new run-time settings from the next tick on (the smoother keeps its state)."""
        self.check(config)
        self.config = config
        self.smoother.configure(config.smoothing)

    def reset(self, initial_action: np.ndarray | None = None) -> None:
        """Forget history and plans (a new episode, or input resumed after a fault)."""
        self._tick = 0
        self._plan: Plan | None = None
        self._ensemble.reset()
        self._plan_error: str | None = None  # the background planner's, until a plan succeeds
        self._state_tick: int | None = None  # the tick whose state the last act took (for plan_ahead)
        self._history_filled = False
        self.smoother.reset(initial_action)
        # A position command starts where the arm is (a zero position would be a jump, however slew-limited).
        self._start_at_state = initial_action is None and self.interface == "position"
        self.status = TickStatus()
        if self._worker is not None:
            self._worker.reset()

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()

    def safe_action(self, reason: str) -> np.ndarray:
        """The safe command, through the smoother like any other, recording why: for effort ``safe_mode``'s
        (hold the last command or ramp to zero); for velocity a ramp to zero (a held velocity keeps
        moving); for position the last measured position (the arm holds still where it is)."""
        self.status = TickStatus(False, reason, self.status.plan_age_ticks, self.status.plan_seconds)
        if self.interface == "position":
            target = self._measured if self._measured_known else self.smoother.output
        elif self.interface == "velocity" or self.config.safety.safe_mode == "zero":
            target = self._zero_action
        else:
            target = self.smoother.output
        return self.smoother(target).copy()

    @property
    def has_safe_command(self) -> bool:
        """False only for the position interface before any valid state and any command: nothing to hold."""
        return not (self._start_at_state and not self._measured_known)

    def planned_positions(self, out: np.ndarray) -> int:
        """The position interface's trajectory: this tick's command, then the plan's next positions, each
        clamped and rate-limited from the one before as the commands are. Fills the first rows of ``out``
        (K, J) and returns how many (1 without a usable plan)."""
        smoother = self.smoother
        out[0] = smoother.output
        plan, age = self._plan, self.status.plan_age_ticks
        if plan is None or not self.status.ok:
            return 1
        ahead = plan.executed[:, age + 1:, : out.shape[1]].mean(dim=0).cpu().numpy()
        count = min(len(out), 1 + len(ahead))
        for k in range(1, count):
            np.clip(ahead[k - 1], out[k - 1] - smoother.max_step, out[k - 1] + smoother.max_step, out=out[k])
            np.clip(out[k], smoother.low, smoother.high, out=out[k])
        return count

    def _push_state(self, state: np.ndarray) -> None:
        if not self._history_filled:
            self._history[:] = state  # a robot at rest before the first observation
            self._history_filled = True
        else:
            self._history[:-1] = self._history[1:]  # NumPy copies overlapping slices correctly
            self._history[-1] = state

    def _request(self, goal: np.ndarray | None, origin_tick: int) -> PlanRequest:
        history = torch.from_numpy(self._history[-self.planner.config.n_obs_steps:].copy()).to(self.device)
        goal_tensor = None
        if self.planner.config.goal_dim:
            goal_tensor = torch.as_tensor(goal, dtype=torch.float32, device=self.device)
        return PlanRequest(history, goal_tensor, origin_tick, self._plan, self.config.planning)

    def _due(self, tick: int) -> bool:
        return self._plan is None or tick - self._plan.origin_tick >= self.config.replan_every

    def select_action(self, state: np.ndarray, goal: np.ndarray | None) -> np.ndarray:
        """The command for this tick: (A,) in action units, smoothed and clamped (``act``, then
        ``plan_ahead``). Never raises."""
        command = self.act(state, goal)
        self.plan_ahead(goal)
        return command

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
            if self.interface == "position":
                self._measured[:] = state[: len(self._measured)]
                self._measured_known = True
                if self._start_at_state:
                    self.smoother.reset(self._measured)
                    self._start_at_state = False
            self._push_state(state)
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
            temperature = self.config.temperature if self.config.use_probabilistic_sampling else 0.0
            self._ensemble.add(plan)
            next_states = self._ensemble.states(tick, self.config.ensemble_decay)
            action = self._action_step(self._history[-self.invdyn.config.seq_length:], next_states, temperature)
            if not np.isfinite(action).all():
                return self.safe_action("inverse dynamics output is not finite")
            self.status = TickStatus(True, "", age, plan.seconds)
            return self.smoother(action).copy()
        except Exception as exc:  # noqa: BLE001 - the tick must always end in a command
            return self.safe_action(f"{type(exc).__name__}: {exc}")

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
