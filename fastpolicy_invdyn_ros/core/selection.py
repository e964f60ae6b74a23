"""Which of the sampled plans to execute: one of them, never their mean.

A diffusion planner draws several plans because there may be several good futures; the mean of
"around the left" and "around the right" is "straight through". The rules:

* ``consistent``: the first plan after a start or reset is the ``mode``; every later
  one is the sample whose first states stay closest to the rest of the plan being executed, so the
  arm does not switch sides half way (the plans are also warm started from that one);
* ``mode``: the sample in the densest place among them: the least summed distance to its N/2
  nearest others. It lies in the largest group of similar samples, and a lone sample between two
  groups (a plan "straight through") is never it: its nearest others are all far. (The plain
  medoid, least summed distance to all, would choose that lone one when the groups are equal.)
  Chosen afresh at every replan;
* ``mean``: every sample's action averaged, the old behaviour, kept for comparison.

Distances are between whole plans in units of each state dimension's spread (the normalizer's
state std), so that positions and velocities weigh alike. Plans are tiny (N x H x S, a few hundred
numbers): the choice costs microseconds in the planner, nothing on the control tick.
"""
from __future__ import annotations

import torch

SAMPLE_SELECTIONS = ("consistent", "mode", "mean")


def mode(plans: torch.Tensor) -> int:
    """(N, H, S) scaled plans -> the index of the sample with the least summed distance to its N/2 nearest
    others (itself excluded)."""
    flat = plans.reshape(len(plans), -1)
    if len(flat) < 3:
        return 0
    nearest = torch.cdist(flat, flat).sort(dim=1).values[:, 1 : 1 + len(flat) // 2]
    return int(nearest.sum(dim=1).argmin())


def closest(plans: torch.Tensor, committed: torch.Tensor) -> int:
    """(N, H, S) scaled plans and (K, S) the committed plan's states still ahead -> the index of the
    plan whose first K states are closest to them."""
    k = min(len(committed), plans.shape[1])
    return int(((plans[:, :k] - committed[:k]) ** 2).sum(dim=(1, 2)).argmin())


def choose(rule: str, plans: torch.Tensor, committed: torch.Tensor | None) -> int | None:
    """The sample to execute under ``rule`` (None: ``mean``, every sample). ``committed``: the states still
    ahead in the plan being executed (None after a start or reset)."""
    if rule == "mean":
        return None
    if rule == "consistent" and committed is not None and len(committed):
        return closest(plans, committed)
    return mode(plans)
