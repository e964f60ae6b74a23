"""The planner in a child process: the same plans as inline, never waited for, failures end in safe commands."""
import os
import signal
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from fastpolicy_invdyn_ros.core.checkpoint import load_invdyn, load_planner
from fastpolicy_invdyn_ros.core.paths import share_path
from fastpolicy_invdyn_ros.core.plan_process import PlanProcess
from fastpolicy_invdyn_ros.core.planning import Planning, PlanningConfig, PlanRequest
from fastpolicy_invdyn_ros.core.policy import Policy, PolicyConfig
from fastpolicy_invdyn_ros.sim import ArmSim, TaskConfig, sample_task

PLANNER = share_path("models", "planner_final.pth")
SEEDED = PlanningConfig(plan_seed=7)


@pytest.fixture(scope="module")
def process():
    worker = PlanProcess(PLANNER)
    yield worker
    worker.close()


@pytest.fixture(scope="module")
def request_():
    planner = load_planner(PLANNER)
    sim = ArmSim()
    q0, goal = sample_task(sim, np.random.default_rng(1), TaskConfig().goal_margin)
    history = torch.as_tensor(sim.reset(q0), dtype=torch.float32).expand(planner.config.n_obs_steps, -1).clone()
    return planner, PlanRequest(history, torch.as_tensor(goal, dtype=torch.float32), 0, None, SEEDED)


def wait_for_plan(worker: PlanProcess, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while True:
        plan, error = worker.latest()
        if plan is not None or error is not None or time.monotonic() > deadline:
            return plan, error
        time.sleep(0.001)


def test_plans_match_the_inline_planner_and_submit_never_waits(process, request_):
    planner, request = request_
    process.reset()
    process.submit(request)
    assert process.pending and process.latest() == (None, None), "submit returned before the plan was made"
    plan, error = wait_for_plan(process)
    assert error is None and not process.pending
    inline = Planning(planner)(request)
    torch.testing.assert_close(plan.states, inline.states, rtol=1e-4, atol=1e-5)
    assert plan.origin_tick == request.origin_tick and plan.seconds > 0

    # A warm start from that plan, and a new request while one is in the child: only the newest is planned.
    warm = replace(request, origin_tick=4, previous=plan)
    process.submit(replace(warm, origin_tick=2))
    process.submit(warm)
    deadline = time.monotonic() + 30
    while (process.latest()[0].origin_tick < 4 or process.pending) and time.monotonic() < deadline:
        time.sleep(0.001)
    latest, error = process.latest()
    assert error is None and latest.origin_tick == 4
    torch.testing.assert_close(latest.states, Planning(planner)(warm).states, rtol=1e-4, atol=1e-5)


def test_reset_discards_a_plan_in_flight(process, request_):
    _, request = request_
    process.reset()
    process.submit(request)
    process.reset()
    time.sleep(0.5)  # far longer than a plan takes
    assert process.latest() == (None, None) and not process.pending


def test_a_missing_checkpoint_fails_at_start_with_its_reason(tmp_path):
    with pytest.raises(RuntimeError, match="planner process: .*missing.pth"):
        PlanProcess(tmp_path / "missing.pth")


def policy_on_a_process(planner, seed: int):
    """A policy with the shipped models planning in a new process, and a task's start state and goal."""
    invdyn = load_invdyn(share_path("models", "invdyn_enhanced_final.pth"))
    sim = ArmSim()
    q0, goal = sample_task(sim, np.random.default_rng(seed), TaskConfig().goal_margin)
    worker = PlanProcess(PLANNER)
    policy = Policy(planner, invdyn, PolicyConfig(), -sim.torque_limit, sim.torque_limit, sim.dt, worker)
    return policy, worker, sim.reset(q0), goal


def test_a_dead_planner_process_gives_the_safe_command_not_a_crash(request_):
    policy, worker, state, goal = policy_on_a_process(request_[0], seed=2)
    try:
        deadline = time.monotonic() + 30
        while not policy.status.ok and time.monotonic() < deadline:
            policy.select_action(state, goal)
            time.sleep(0.01)
        assert policy.status.ok, policy.status.reason
        os.kill(worker.pid, signal.SIGKILL)
        time.sleep(0.5)
        for _ in range(policy.horizon):
            command = policy.select_action(state, goal)
        assert not policy.status.ok and "exited" in policy.status.reason
        assert np.all(np.abs(command) <= ArmSim().torque_limit)
    finally:
        policy.close()


def test_the_command_never_waits_for_the_planner_exchange(request_):
    """``act`` makes the command from the plan at hand; only ``plan_ahead`` (after the command is sent)
    pickles requests into the pipe and takes finished plans, which serve from the next tick."""
    policy, worker, state, goal = policy_on_a_process(request_[0], seed=3)
    try:
        policy.act(state, goal)
        assert policy.status.reason == "waiting for the first plan" and not worker.pending
        policy.plan_ahead(goal)
        assert worker.pending  # asked from the state act took (tick 0)
        plan, _ = wait_for_plan(worker)
        assert plan.origin_tick == 0
        policy.act(state, goal)
        assert not policy.status.ok and policy.plan is None, "a plan landed meanwhile is not taken by act"
        policy.plan_ahead(goal)
        assert policy.plan is plan
        policy.act(state, goal)
        assert policy.status.ok and policy.status.plan_age_ticks == 2
    finally:
        policy.close()
