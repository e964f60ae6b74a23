"""Choosing the executed plan among the sampled ones, on hand-made bimodal plans: two ways around an obstacle."""
from __future__ import annotations

import pytest
import torch

from fastpolicy_invdyn_ros.core.selection import choose, closest, mode

H, S = 16, 4


def way(side: float, n: int, seed: int, spread: float = 0.02) -> torch.Tensor:
    """``n`` plans bending to one side: the second dimension goes to ``side`` and back, with a little noise."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, H)
    base = torch.stack([t, side * torch.sin(torch.pi * t), torch.zeros(H), torch.zeros(H)], dim=1)
    return base + spread * torch.randn(n, H, S, generator=generator)


def between(n: int = 1) -> torch.Tensor:
    """What averaging the two ways gives: straight through."""
    return (way(1.0, n, 7, 0.0) + way(-1.0, n, 8, 0.0)) / 2


def side(plan: torch.Tensor) -> float:
    return float(torch.sign(plan[H // 2, 1]))


@pytest.mark.parametrize("up, down", [(5, 3), (3, 5), (4, 4), (6, 1)])
def test_the_mode_is_a_member_of_the_larger_way_never_a_plan_between_them(up: int, down: int) -> None:
    plans = torch.cat([way(1.0, up, 0), between(), way(-1.0, down, 1)])
    chosen = plans[mode(plans)]
    assert abs(float(chosen[H // 2, 1])) > 0.9, "one of the two ways, not straight through"
    if up != down:
        assert side(chosen) == (1.0 if up > down else -1.0), "the larger group"


def test_consistent_keeps_the_committed_way_across_replans_even_against_the_majority() -> None:
    first = torch.cat([way(1.0, 2, 2), way(-1.0, 6, 3)])
    executed = first[choose("consistent", first, None)]
    assert side(executed) == -1.0, "the first plan: the mode"
    switches = 0
    for replan in range(10):  # the executed plan advances by 4 states; the new samples favour the other way
        ahead = executed[4:]
        plans = torch.cat([way(1.0, 6, 10 + replan), way(-1.0, 2, 30 + replan)])
        plans[:, :, 0] += 4 / (H - 1)  # the new plans start where the executed one is now
        index = choose("consistent", plans, ahead)
        switches += side(plans[index]) != side(executed)
        executed = plans[index]
        assert index == closest(plans, ahead)
    assert switches == 0


def test_mean_executes_every_sample() -> None:
    plans = torch.cat([way(1.0, 4, 4), way(-1.0, 4, 5)])
    assert choose("mean", plans, None) is None
    assert choose("mean", plans, plans[0]) is None
