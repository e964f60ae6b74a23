"""Per-dimension standardization of states and actions, and the planner's relative coordinates."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from .data import Episodes

STD_FLOOR = 1e-3
"""Smallest std used for a dimension, so a constant column (a joint that never moved) maps to 0."""
PLAN_STD_FLOOR = 1e-5
"""Smallest per-step plan scale: one-step position changes are legitimately ~1e-3."""

_FIELDS = ("state_mean", "state_std", "action_mean", "action_std")
_PLAN_FIELDS = ("plan_delta_std", "goal_error_std")


@dataclass
class Normalizer:
    """``(x - mean) / std`` per dimension; every field is a float32 tensor on one device.

    The planner works in coordinates relative to the current state s_t (fields fitted by
    ``with_plan_statistics``): a plan is ``(s_{t+k} - s_t) / plan_delta_std[k]`` and the goal is
    ``(goal - q_t) / goal_error_std``. Per-step scaling matters: one control period moves a state
    by a hundredth of its spread, and the inverse dynamics model acts on exactly that first step,
    so an error of the same normalized size costs far less at k = 1 than it would in absolute units;
    and at the goal the right plan is exactly zero.
    """

    state_mean: torch.Tensor
    state_std: torch.Tensor
    action_mean: torch.Tensor
    action_std: torch.Tensor
    plan_delta_std: torch.Tensor | None = None
    """(H, S) std of s_{t+k} - s_t for k = 1..H (planner checkpoints only)."""
    goal_error_std: torch.Tensor | None = None
    """(G,) std of goal - q_t, q_t the first G state dimensions (planner checkpoints only)."""

    @classmethod
    def fit(cls, episodes: Episodes) -> Normalizer:
        def stats(array: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            mean = torch.as_tensor(array.mean(axis=0), dtype=torch.float32)
            std = torch.as_tensor(array.std(axis=0), dtype=torch.float32).clamp_min(STD_FLOOR)
            return mean, std

        state_mean, state_std = stats(episodes.states)
        action_mean, action_std = stats(episodes.actions)
        return cls(state_mean, state_std, action_mean, action_std)

    def with_plan_statistics(self, windows: dict[str, np.ndarray]) -> Normalizer:
        """A copy with the planner's relative-coordinate scales fitted on ``data.planner_windows``."""
        current = windows["history"][:, -1]
        delta = windows["future"] - current[:, None, :]
        goal_error = windows["goal"] - current[:, : windows["goal"].shape[1]]
        return replace(
            self,
            plan_delta_std=torch.as_tensor(delta.std(axis=0), dtype=torch.float32).clamp_min(PLAN_STD_FLOOR),
            goal_error_std=torch.as_tensor(goal_error.std(axis=0), dtype=torch.float32).clamp_min(STD_FLOOR),
        )

    def normalize_plan(self, future: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """(..., H, S) raw future states -> planner coordinates relative to ``current`` (..., S)."""
        return (future - current.unsqueeze(-2)) / self.plan_delta_std

    def unnormalize_plan(self, plan: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """Planner coordinates (..., H, S) -> raw future states, relative to ``current`` (..., S)."""
        return plan * self.plan_delta_std + current.unsqueeze(-2)

    def normalize_goal_error(self, goal: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """(..., G) raw goal -> the planner's goal input: the scaled error from ``current`` (..., S)."""
        return (goal - current[..., : goal.shape[-1]]) / self.goal_error_std

    def normalize_state(self, state: torch.Tensor) -> torch.Tensor:
        return (state - self.state_mean) / self.state_std

    def unnormalize_state(self, state: torch.Tensor) -> torch.Tensor:
        return state * self.state_std + self.state_mean

    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return (action - self.action_mean) / self.action_std

    def unnormalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return action * self.action_std + self.action_mean

    def _tensors(self) -> dict[str, torch.Tensor]:
        fields = {name: getattr(self, name) for name in _FIELDS + _PLAN_FIELDS}
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
        known = [name for name in _FIELDS + _PLAN_FIELDS if name in state]
        return cls(**{name: torch.as_tensor(state[name], dtype=torch.float32) for name in known})
