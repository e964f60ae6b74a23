"""From sampled plans to actions: the inverse dynamics step of a plan's next state.

``actions_from_plan`` is what the control tick runs; ``sample_actions_with_enhanced_invdyn`` and
``generate_actions_with_enhanced_invdyn`` are the seed's one-shot API over the same step (plan,
then act on the first planned state), with the same choice of sample (``selection``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .invdyn import InvDynamic
from .planner import DiffusionPlanner
from .selection import choose


def actions_from_plan(inv_dyn_model: InvDynamic, history: torch.Tensor, next_states: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """Mean action over the given next states (one, when a sample was chosen), in normalized units.

    history (B, L, S), next_states (B, N, S) -> (B, A): the N states share their row's history.
    """
    return inv_dyn_model.forward_samples(history, next_states, temperature).mean(dim=1)


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
    sample_selection: str = "mean",
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
    sample_selection: str = "mean",
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
