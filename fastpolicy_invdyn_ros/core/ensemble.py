"""Temporal ensembling: the next state a tick acts on, blended over the recent plans that cover it.

A plan is H states long and a new one comes every ``replan_every`` ticks, so each tick is covered by
up to H / replan_every plans, made from successively older states. Acting on the newest alone, the
command jumps wherever a plan's next state differs from the one it replaces; ACT (Zhao et al.,
2023) averages what every overlapping prediction says for the current step instead. Here the weights
fall by ``decay`` per plan back from the newest (0: the newest alone, as without ensembling; 1: all
alike), so that a new plan still takes over within a few replans.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from .planning import Plan


class PlanEnsemble:
    """The recent plans (at most ``capacity``) and the blend of their states for a tick, in arrays kept between
    ticks.

    Plans blend only with plans of the same number of executed rows (each row continues its own
    predecessor: with ``mean`` every sample, with a selection rule the one executed).
    """

    def __init__(self, capacity: int, state_dim: int) -> None:
        self._plans: deque[Plan] = deque(maxlen=capacity)
        self._blend = np.zeros((1, state_dim), np.float32)  # grown to the executed rows on first need
        self._scaled = np.zeros_like(self._blend)

    def reset(self) -> None:
        self._plans.clear()

    def add(self, plan: Plan) -> None:
        """The plan a tick acts on now (the same plan again is ignored)."""
        if not self._plans or self._plans[-1] is not plan:
            self._plans.append(plan)

    def states(self, tick: int, decay: float) -> np.ndarray:
        """(rows, S) the states for ``tick``: the newest plan's, blended with the older plans that still cover the
        tick, weighted ``decay ** k`` for the k-th plan back. The newest plan must cover the tick; the result is
        a view, valid until the next call."""
        newest = self._plans[-1]
        own = newest.executed_states[:, tick - newest.origin_tick]
        rows = len(own)
        if decay == 0.0 or len(self._plans) == 1:
            return own
        if rows > len(self._blend):  # more samples than before (a parameter change): the only allocation
            self._blend = np.zeros((rows, own.shape[1]), np.float32)
            self._scaled = np.zeros_like(self._blend)
        blend, scaled = self._blend[:rows], self._scaled[:rows]
        blend[:] = own
        total, weight = 1.0, 1.0
        for back in range(2, len(self._plans) + 1):
            plan = self._plans[-back]
            weight *= decay
            states = plan.executed_states
            age = tick - plan.origin_tick
            if age >= states.shape[1] or len(states) != rows:
                break  # older plans end sooner still, or executed other rows
            np.multiply(states[:, age], weight, out=scaled)
            blend += scaled
            total += weight
        blend /= total
        return blend
