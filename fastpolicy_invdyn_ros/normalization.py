"""Per-dimension standardization of states, actions and goals, fitted on the training split."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import Episodes

STD_FLOOR = 1e-3
"""Smallest std used for a dimension, so a constant column (a joint that never moved) maps to 0."""

_FIELDS = ("state_mean", "state_std", "action_mean", "action_std", "goal_mean", "goal_std")


@dataclass
class Normalizer:
    """``(x - mean) / std`` per dimension; every field is a float32 tensor on one device."""

    state_mean: torch.Tensor
    state_std: torch.Tensor
    action_mean: torch.Tensor
    action_std: torch.Tensor
    goal_mean: torch.Tensor
    goal_std: torch.Tensor

    @classmethod
    def fit(cls, episodes: Episodes) -> Normalizer:
        def stats(array: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            mean = torch.as_tensor(array.mean(axis=0), dtype=torch.float32)
            std = torch.as_tensor(array.std(axis=0), dtype=torch.float32).clamp_min(STD_FLOOR)
            return mean, std

        state_mean, state_std = stats(episodes.states)
        action_mean, action_std = stats(episodes.actions)
        goal_mean, goal_std = stats(episodes.goals)
        return cls(state_mean, state_std, action_mean, action_std, goal_mean, goal_std)

    def normalize_state(self, state: torch.Tensor) -> torch.Tensor:
        return (state - self.state_mean) / self.state_std

    def unnormalize_state(self, state: torch.Tensor) -> torch.Tensor:
        return state * self.state_std + self.state_mean

    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return (action - self.action_mean) / self.action_std

    def unnormalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return action * self.action_std + self.action_mean

    def normalize_goal(self, goal: torch.Tensor) -> torch.Tensor:
        return (goal - self.goal_mean) / self.goal_std

    def to(self, device: torch.device | str) -> Normalizer:
        return Normalizer(**{name: getattr(self, name).to(device) for name in _FIELDS})

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name).detach().cpu() for name in _FIELDS}

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> Normalizer:
        missing = set(_FIELDS) - set(state)
        if missing:
            raise ValueError(f"normalizer is missing {sorted(missing)}")
        return cls(**{name: torch.as_tensor(state[name], dtype=torch.float32) for name in _FIELDS})

    @property
    def state_dim(self) -> int:
        return self.state_mean.numel()

    @property
    def action_dim(self) -> int:
        return self.action_mean.numel()

    @property
    def goal_dim(self) -> int:
        return self.goal_mean.numel()
