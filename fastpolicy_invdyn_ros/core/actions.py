"""From sampled plans to actions: the inverse dynamics step of a plan's next state.

``InvDynTick`` is what the control tick runs (``ActionStep``: in PyTorch ``TorchActionStep``, in ONNX Runtime
``runtime.OnnxActionStep``); ``sample_actions_with_enhanced_invdyn`` and
``generate_actions_with_enhanced_invdyn`` are the seed's one-shot API over the same step (plan,
then act on the first planned state), with the same choice of sample (``selection``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from .invdyn import InvDynamic
from .planner import DiffusionPlanner
from .planning import PlanningConfig
from .selection import choose


class InvDynTick(nn.Module):
    """The tick's inverse dynamics step, in raw units: (B, L, S) recent states and (B, N, S) next states (the
    executed samples', sharing their row's history) -> (B, A) the mean of their actions. ``noise`` (B, N, A):
    a probabilistic head's standard normal draws (None: fresh ones); this module is what ``runtime`` exports."""

    def __init__(self, model: InvDynamic) -> None:
        super().__init__()
        self.model = model

    def forward(self, history: Tensor, next_states: Tensor, temperature: float | Tensor,
                noise: Tensor | None = None) -> Tensor:
        normalizer = self.model.normalizer
        actions = self.model.forward_samples(normalizer.normalize_state(history),
                                             normalizer.normalize_state(next_states), temperature, noise)
        return normalizer.unnormalize_action(actions.mean(dim=1), history[:, -1])


class ActionStep(Protocol):
    """The tick's inverse dynamics step: (L, S) raw recent states and (N, S) raw next states, NumPy arrays ->
    (A,) the raw mean action; the array returned may be reused by the next call."""

    def __call__(self, history: np.ndarray, next_states: np.ndarray, temperature: float) -> np.ndarray: ...


class TorchActionStep:
    """``ActionStep`` in PyTorch."""

    def __init__(self, model: InvDynamic) -> None:
        self._tick = InvDynTick(model)
        self._device = next(model.parameters()).device

    @torch.inference_mode()
    def __call__(self, history: np.ndarray, next_states: np.ndarray, temperature: float) -> np.ndarray:
        def tensor(array: np.ndarray) -> Tensor:
            return torch.from_numpy(array).to(self._device)[None]

        return self._tick(tensor(history), tensor(next_states), temperature)[0].cpu().numpy()


@dataclass
class SampledActions:
    """What the one-shot API planned and acted, per sample, and which sample it executes."""

    plans: torch.Tensor
    """(B, N, H, S) raw planned states."""
    actions: torch.Tensor
    """(B, N, A) normalized action to each sample's first planned state."""
    chosen: list[int | None]
    """Per row, the executed sample (None: their mean)."""

    @property
    def executed(self) -> torch.Tensor:
        """(B, A) the executed normalized actions."""
        rows = [self.actions[b].mean(0) if k is None else self.actions[b, k] for b, k in enumerate(self.chosen)]
        return torch.stack(rows)


@torch.inference_mode()
def sample_actions_with_enhanced_invdyn(
    diffusion_model: DiffusionPlanner,
    inv_dyn_model: InvDynamic,
    norm_batch: dict[str, torch.Tensor],
    norm_current_state: torch.Tensor,
    num_inference_samples: int = 8,
    temperature: float = 0.0,
    use_probabilistic_sampling: bool = False,
    num_inference_steps: int | None = None,
    sample_selection: str = PlanningConfig.sample_selection,
) -> SampledActions:
    """Plan ``num_inference_samples`` futures per row, act on each one's first state, choose one.

    norm_batch: ``history`` (B, n_obs_steps, S) normalized states and ``goal`` (B, G) the normalized
    goal error, as the planner's normalizer makes them (``normalize_state``, ``normalize_goal_error``).
    norm_current_state: (B, S) current state or (B, L, S) recent states, normalized for the
    inverse dynamics model. Both models carry the normalizers their loaders attach. With no plan
    being executed, ``consistent`` chooses as ``mode`` does.
    """
    plans = diffusion_model.sample(norm_batch["history"], norm_batch.get("goal"), num_inference_samples,
                                   num_inference_steps)
    planner_units, invdyn_units = diffusion_model.normalizer, inv_dyn_model.normalizer
    current = planner_units.unnormalize_state(norm_batch["history"][:, -1])
    raw = planner_units.unnormalize_plan(plans, current.unsqueeze(1))
    history = norm_current_state if norm_current_state.ndim == 3 else norm_current_state.unsqueeze(1)
    actions = inv_dyn_model.forward_samples(history, invdyn_units.normalize_state(raw[:, :, 0]),
                                            temperature if use_probabilistic_sampling else 0.0)
    chosen = [choose(sample_selection, row / planner_units.state_std, None) for row in raw]
    return SampledActions(raw, actions, chosen)


def generate_actions_with_enhanced_invdyn(
    diffusion_model: DiffusionPlanner,
    inv_dyn_model: InvDynamic,
    norm_batch: dict[str, torch.Tensor],
    norm_current_state: torch.Tensor,
    num_inference_samples: int = 8,
    temperature: float = 0.0,
    use_probabilistic_sampling: bool = False,
    num_inference_steps: int | None = None,
    sample_selection: str = PlanningConfig.sample_selection,
) -> torch.Tensor:
    """The seed's one-shot API: plan, then act on the first planned state of the chosen sample (or the mean
    of every sample's action). Works with every model type. Returns (B, A) normalized actions
    (``inv_dyn_model.normalizer.unnormalize_action(actions, current_state)``: position commands are offsets
    from the current positions);
    ``temperature`` applies only with probabilistic sampling. ``sample_actions_with_enhanced_invdyn``
    gives the per-sample plans and actions."""
    return sample_actions_with_enhanced_invdyn(diffusion_model, inv_dyn_model, norm_batch, norm_current_state,
                                               num_inference_samples, temperature, use_probabilistic_sampling,
                                               num_inference_steps, sample_selection).executed
