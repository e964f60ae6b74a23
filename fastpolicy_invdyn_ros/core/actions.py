"""From sampled plans to actions: the inverse dynamics step of every plan's next state.

``actions_from_plan`` is what the control tick runs; ``generate_actions_with_enhanced_invdyn`` is the
seed's one-shot API over the same step (plan, then act on the first planned state).
"""
from __future__ import annotations

import torch

from .invdyn import InvDynamic
from .planner import DiffusionPlanner


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
