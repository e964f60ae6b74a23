"""Temporal ensembling of overlapping plans, on hand-made plans whose blends are known."""
import numpy as np
import pytest
import torch

from fastpolicy_invdyn_ros.core.ensemble import PlanEnsemble
from fastpolicy_invdyn_ros.core.planning import Plan

H, S = 8, 2


def plan(origin: int, value: float, rows: int = 1) -> Plan:
    """A plan whose state at tick origin + k is value + k in every row and dimension."""
    states = value + torch.arange(H, dtype=torch.float32)[None, :, None].expand(rows, H, S)
    return Plan(states.contiguous(), 0 if rows == 1 else None, origin, 0.0)


def test_the_newest_plan_alone_at_decay_zero_and_with_one_plan() -> None:
    ensemble = PlanEnsemble(H, S)
    ensemble.add(plan(0, 10.0))
    assert ensemble.states(3, 0.5).tolist() == [[13.0, 13.0]]
    ensemble.add(plan(2, 100.0))
    assert ensemble.states(3, 0.0).tolist() == [[101.0, 101.0]]


def test_older_plans_covering_the_tick_blend_in_with_weights_falling_by_decay() -> None:
    ensemble = PlanEnsemble(H, S)
    for origin, value in ((0, 10.0), (2, 20.0), (4, 40.0)):
        ensemble.add(plan(origin, value))
    ensemble.add(ensemble._plans[-1])  # the same plan again is not a new one
    # Tick 5: the newest says 41, the one before 23, the first 15; weights 1, 0.5, 0.25.
    expected = (41.0 + 0.5 * 23.0 + 0.25 * 15.0) / 1.75
    assert ensemble.states(5, 0.5) == pytest.approx(np.full((1, S), expected))
    # Tick 9: the first plan (origin 0, H = 8) no longer covers it; blending stops at it.
    assert ensemble.states(9, 0.5) == pytest.approx(np.full((1, S), (45.0 + 0.5 * 27.0) / 1.5))
    assert ensemble.states(5, 1.0) == pytest.approx(np.full((1, S), (41.0 + 23.0 + 15.0) / 3))


def test_plans_blend_row_by_row_and_only_with_plans_of_as_many_rows() -> None:
    ensemble = PlanEnsemble(H, S)
    ensemble.add(plan(0, 10.0, rows=1))
    ensemble.add(plan(2, 20.0, rows=3))  # the sample count changed: nothing to blend with
    assert ensemble.states(3, 0.5) == pytest.approx(np.full((3, S), 21.0))
    ensemble.add(plan(4, 40.0, rows=3))
    assert ensemble.states(5, 0.5) == pytest.approx(np.full((3, S), (41.0 + 0.5 * 23.0) / 1.5))


def test_reset_forgets_the_plans() -> None:
    ensemble = PlanEnsemble(H, S)
    ensemble.add(plan(0, 10.0))
    ensemble.reset()
    ensemble.add(plan(2, 20.0))
    assert ensemble.states(3, 0.5).tolist() == [[21.0, 21.0]]
