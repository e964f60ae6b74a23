"""Per-dimension standardization of states and actions, the planner's relative coordinates, and position
commands as offsets from the measured positions."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from .data import Episodes

STD_FLOOR = 1e-3
"""Smallest std used for a dimension, so a constant column (a joint that never moved) maps to 0."""
PLAN_STD_FLOOR = 1e-5
"""Smallest per-step plan scale: one-step position changes are legitimately ~1e-3."""
PLAN_SCALES = ("std", "range", "symlog")
"""How the planner's coordinates scale each step's state change (``Normalizer.with_plan_statistics``)."""
PLAN_RANGE_PERCENTILE = 99.5
"""The ``range`` plan scale: this percentile of each step's absolute state change."""

_FIELDS = ("state_mean", "state_std", "action_mean", "action_std")
_OPTIONAL_FIELDS = ("plan_delta_std", "plan_symlog", "goal_error_std", "goal_index", "goal_mean",
                    "action_reference")
_INDEX_FIELDS = ("goal_index", "action_reference")


@dataclass
class Normalizer:
    """``(x - mean) / std`` per dimension; every field is a float32 tensor on one device.

    The planner works in coordinates relative to the current state s_t (fields fitted by
    ``with_plan_statistics``): a plan is ``(s_{t+k} - s_t) / plan_delta_std[k]`` and a goal entry that
    targets a state entry is its error ``(goal_i - s_t[goal_index_i]) / goal_error_std_i``; a goal entry
    of its own kind (an end-effector position) is standardized by its own statistics. Per-step scaling matters: one control period moves a state
    by a hundredth of its spread, and the inverse dynamics model acts on exactly that first step,
    so an error of the same normalized size costs far less at k = 1 than it would in absolute units;
    and at the goal the right plan is exactly zero.

    A position command is standardized as its offset from its joint's measured position (``action_reference``,
    fitted for data of the position interface): the command is the position plus a lead of a few hundredths
    of a radian, and a servo turns an error in that lead into torque at its stiffness (5000 N·m/rad on the
    UR5e's shoulder), so the model must get the lead right, not the position it shares with the state.
    """

    state_mean: torch.Tensor
    state_std: torch.Tensor
    action_mean: torch.Tensor
    action_std: torch.Tensor
    plan_delta_std: torch.Tensor | None = None
    """(H, S) scale of s_{t+k} - s_t for k = 1..H (planner checkpoints only): its std, or with the ``range`` plan
    scale its 99.5th percentile of magnitude."""
    plan_symlog: torch.Tensor | None = None
    """Present (0-d, 1) when the scaled plan is also compressed, ``sign(x) log(1 + |x|)`` (the symlog plan scale)."""
    goal_error_std: torch.Tensor | None = None
    """(G,) std of each goal entry's error from its state entry, or of the entry itself (planner only)."""
    goal_index: torch.Tensor | None = None
    """(G,) int64: the state entry each goal entry targets, -1 for one of its own kind; None: the first G
    state entries (checkpoints made before goals were described)."""
    goal_mean: torch.Tensor | None = None
    """(G,) mean of the goal entries of their own kind (0 for the others)."""
    action_reference: torch.Tensor | None = None
    """(A,) int64: the state entry each action entry is an offset from, -1 for none; None: every action absolute."""

    @classmethod
    def fit(cls, episodes: Episodes) -> Normalizer:
        def stats(array: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            mean = torch.as_tensor(array.mean(axis=0), dtype=torch.float32)
            std = torch.as_tensor(array.std(axis=0), dtype=torch.float32).clamp_min(STD_FLOOR)
            return mean, std

        state_mean, state_std = stats(episodes.states)
        reference = action_references(episodes)
        if reference is None:
            return cls(state_mean, state_std, *stats(episodes.actions))
        offsets = episodes.actions - np.where(reference >= 0, episodes.states[:, np.maximum(reference, 0)], 0.0)
        return cls(state_mean, state_std, *stats(offsets), action_reference=torch.as_tensor(reference))

    def with_plan_statistics(self, windows: dict[str, np.ndarray], goal_index: list[int],
                             plan_scale: str = "std") -> Normalizer:
        """A copy with the planner's relative-coordinate scales fitted on ``data.planner_windows``;
        ``goal_index`` as ``RobotDescription.goal_state_indices`` gives it.

        ``plan_scale`` (``PLAN_SCALES``): ``std`` divides each step's state change by its standard deviation.
        Demonstrations hold still in most of their windows, which shrinks it until a start from rest is 6-10 of
        them, far outside the unit range the noise schedule is made for. ``range`` divides by the 99.5th percentile
        of its magnitude instead (nearly every plan within [-1, 1], the small changes of holding still smaller
        still); ``symlog`` keeps the standard deviation and compresses, ``sign(x) log(1 + |x|)``: unchanged near
        zero (holding still, a goal's last centimetres), a tenfold change about 2.4."""
        if plan_scale not in PLAN_SCALES:
            raise ValueError(f"plan_scale must be one of {PLAN_SCALES}, got {plan_scale!r}")
        current = windows["history"][:, -1]
        delta = windows["future"] - current[:, None, :]
        scale = (np.percentile(np.abs(delta), PLAN_RANGE_PERCENTILE, axis=0) if plan_scale == "range"
                 else delta.std(axis=0))
        index = np.asarray(goal_index, dtype=np.int64).reshape(-1)
        own = index < 0
        goal_mean = np.where(own, windows["goal"].mean(axis=0), 0.0)
        reference = np.where(own, goal_mean, current[:, np.maximum(index, 0)])
        return replace(
            self,
            plan_delta_std=torch.as_tensor(scale, dtype=torch.float32).clamp_min(PLAN_STD_FLOOR),
            plan_symlog=torch.tensor(1.0) if plan_scale == "symlog" else None,
            goal_error_std=torch.as_tensor((windows["goal"] - reference).std(axis=0),
                                           dtype=torch.float32).clamp_min(STD_FLOOR),
            goal_index=torch.as_tensor(index),
            goal_mean=torch.as_tensor(goal_mean, dtype=torch.float32),
        )

    def normalize_plan(self, future: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """(..., H, S) raw future states -> planner coordinates relative to ``current`` (..., S)."""
        scaled = (future - current.unsqueeze(-2)) / self.plan_delta_std
        return scaled if self.plan_symlog is None else torch.sign(scaled) * torch.log1p(scaled.abs())

    def unnormalize_plan(self, plan: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """Planner coordinates (..., H, S) -> raw future states, relative to ``current`` (..., S)."""
        if self.plan_symlog is not None:
            plan = torch.sign(plan) * torch.expm1(plan.abs())
        return plan * self.plan_delta_std + current.unsqueeze(-2)

    def normalize_goal_error(self, goal: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """(..., G) raw goal -> the planner's goal input: each entry's scaled error from its state entry
        in ``current`` (..., S), or the entry standardized."""
        if self.goal_index is None:
            return (goal - current[..., : goal.shape[-1]]) / self.goal_error_std
        reference = torch.where(self.goal_index < 0, self.goal_mean, current[..., self.goal_index.clamp_min(0)])
        return (goal - reference) / self.goal_error_std

    def normalize_state(self, state: torch.Tensor) -> torch.Tensor:
        return (state - self.state_mean) / self.state_std

    def unnormalize_state(self, state: torch.Tensor) -> torch.Tensor:
        return state * self.state_std + self.state_mean

    def normalize_action(self, action: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        """(..., A) raw actions taken at the raw states ``state`` (..., S) -> model units."""
        return (action - self._action_offset(state) - self.action_mean) / self.action_std

    def unnormalize_action(self, action: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        """(..., A) model units -> raw actions at the raw states ``state`` (..., S; needed when ``action_reference``
        makes actions offsets)."""
        return action * self.action_std + self.action_mean + self._action_offset(state)

    def _action_offset(self, state: torch.Tensor | None) -> torch.Tensor | float:
        if self.action_reference is None:
            return 0.0
        if state is None:
            raise ValueError("these actions are offsets from the state's positions: give the state")
        return torch.where(self.action_reference >= 0, state[..., self.action_reference.clamp_min(0)], 0.0)

    def _tensors(self) -> dict[str, torch.Tensor]:
        fields = {name: getattr(self, name) for name in _FIELDS + _OPTIONAL_FIELDS}
        return {name: tensor for name, tensor in fields.items() if tensor is not None}

    def to(self, device: torch.device | str) -> Normalizer:
        return Normalizer(**{name: tensor.to(device) for name, tensor in self._tensors().items()})

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().cpu() for name, tensor in self._tensors().items()}

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> Normalizer:
        missing = set(_FIELDS) - set(state)
        if missing:
            raise ValueError(f"normalizer is missing {sorted(missing)}")
        known = [name for name in _FIELDS + _OPTIONAL_FIELDS if name in state]
        return cls(**{name: torch.as_tensor(state[name], dtype=torch.int64 if name in _INDEX_FIELDS else torch.float32)
                      for name in known})


def action_references(episodes: Episodes) -> np.ndarray | None:
    """(A,) the state entry of each joint's position for position commands (-1: not in the state); None for
    commands of another interface (absolute)."""
    robot = episodes.robot
    if robot is None or robot.command_interface != "position":
        return None
    index = {name: i for i, name in enumerate(robot.state_names)}
    return np.array([index.get(f"{joint}/position", -1) for joint in robot.joint_names], dtype=np.int64)
