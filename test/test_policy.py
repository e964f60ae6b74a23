"""The policy: plans from the planner, actions from every inverse dynamics model, closed loop."""
import numpy as np
import pytest
import torch

from fastpolicy_invdyn_ros.core.checkpoint import load_invdyn, load_planner
from fastpolicy_invdyn_ros.core.paths import share_path
from fastpolicy_invdyn_ros.core.actions import generate_actions_with_enhanced_invdyn, sample_actions_with_enhanced_invdyn
from fastpolicy_invdyn_ros.core.planning import Planning, PlanningConfig, PlanRequest
from fastpolicy_invdyn_ros.core.policy import Policy, PolicyConfig
from fastpolicy_invdyn_ros.core.safety import SafetyConfig
from fastpolicy_invdyn_ros.sim import ArmSim, TaskConfig, run_episode, sample_task
from fastpolicy_invdyn_ros.core.training import TrainConfig, train

DEFAULT_PLANNER = share_path("models", "planner_final.pth")
DEFAULT_INVDYN = share_path("models", "invdyn_enhanced_final.pth")


@pytest.fixture(scope="module")
def invdyn_variants(demos_path, tmp_path_factory):
    """Briefly trained mlp, seq and probabilistic enhanced models (finite, not good)."""
    output_dir = tmp_path_factory.mktemp("variants")
    common = dict(data=[str(demos_path)], steps=30, batch_size=64, hidden_dim=32, num_layers=1, progress=False)
    return {
        name: load_invdyn(train(TrainConfig(output_dir=str(output_dir / name), model_type=model_type,
                                            probabilistic=probabilistic, **common)).final_path)
        for name, model_type, probabilistic in [("mlp", "mlp", False), ("seq", "seq", False),
                                                ("enhanced", "enhanced", True)]
    }


@pytest.fixture(scope="module")
def default_models():
    return load_planner(DEFAULT_PLANNER), load_invdyn(DEFAULT_INVDYN)


def reach_state(sim: ArmSim, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    q0, goal = sample_task(sim, np.random.default_rng(seed), TaskConfig().goal_margin)
    return sim.reset(q0), goal


def seed_api_inputs(planner, model, rows: int = 2) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The seed API's normalized inputs for ``rows`` copies of a rest state before a reach: the planner's
    batch (history, goal error) and the inverse dynamics model's history."""
    state, goal = reach_state(ArmSim())
    units = planner.normalizer
    current = torch.as_tensor(state, dtype=torch.float32)
    norm_batch = {"history": units.normalize_state(current.expand(rows, planner.config.n_obs_steps, -1)),
                  "goal": units.normalize_goal_error(torch.as_tensor(goal, dtype=torch.float32),
                                                     current).expand(rows, -1)}
    return norm_batch, model.normalizer.normalize_state(current.expand(rows, model.config.seq_length, -1))


@pytest.mark.parametrize("name", ["mlp", "seq", "enhanced"])
def test_generate_actions_works_with_every_model_type(default_models, invdyn_variants, name):
    planner, _ = default_models
    model = invdyn_variants[name]
    norm_batch, invdyn_history = seed_api_inputs(planner, model)
    actions = generate_actions_with_enhanced_invdyn(planner, model, norm_batch, invdyn_history,
                                                    num_inference_samples=4, temperature=0.5,
                                                    use_probabilistic_sampling=True, num_inference_steps=3)
    assert actions.shape == (2, 3) and torch.isfinite(actions).all()


@pytest.mark.parametrize("rule", ["consistent", "mode", "mean"])
def test_the_seed_api_executes_the_chosen_samples_action_or_the_mean(default_models, rule):
    planner, model = default_models
    norm_batch, history = seed_api_inputs(planner, model)
    torch.manual_seed(0)
    sampled = sample_actions_with_enhanced_invdyn(planner, model, norm_batch, history, 6, sample_selection=rule)
    torch.manual_seed(0)
    executed = generate_actions_with_enhanced_invdyn(planner, model, norm_batch, history, 6, sample_selection=rule)
    assert sampled.plans.shape == (2, 6, planner.config.horizon, 6) and sampled.actions.shape == (2, 6, 3)
    for row, chosen in enumerate(sampled.chosen):
        expected = sampled.actions[row].mean(0) if rule == "mean" else sampled.actions[row, chosen]
        assert (chosen is None) == (rule == "mean")
        torch.testing.assert_close(executed[row], expected)


def test_a_chosen_sample_is_executed_and_the_next_plan_warm_starts_from_it(default_models):
    planner, invdyn = default_models
    sim = ArmSim()
    state, goal = reach_state(sim, seed=4)
    config = PolicyConfig(replan_every=2, planning=PlanningConfig(sample_selection="consistent"))
    policy = Policy(planner, invdyn, config, -sim.torque_limit, sim.torque_limit, sim.dt)
    first = None
    for _ in range(3):
        state = sim.step(policy.select_action(state, goal))
        first = first or policy.plan
    second = policy.plan
    assert second is not first and first.chosen is not None and second.chosen is not None
    torch.testing.assert_close(first.executed, first.states[first.chosen : first.chosen + 1])
    # What the tick reads, in NumPy: the executed rows.
    assert np.array_equal(first.executed_states, first.executed.numpy())
    # Warm started from the executed sample alone: the new samples agree more with it than the first ones did.
    elapsed = second.origin_tick - first.origin_tick
    ahead = first.states[first.chosen, elapsed:]
    before = float(((first.states[:, elapsed:] - ahead) ** 2).mean())
    after = float(((second.states[:, : len(ahead)] - ahead) ** 2).mean())
    assert after < before


def test_the_first_plan_after_a_start_may_be_drawn_with_ddpm_and_the_later_ones_as_the_sampler_says(default_models):
    planner, _ = default_models
    planning = Planning(planner)
    state, goal = reach_state(ArmSim(), seed=2)
    history = torch.as_tensor(state, dtype=torch.float32).expand(planner.config.n_obs_steps, -1)
    goal = torch.as_tensor(goal, dtype=torch.float32)

    def plan(previous, **settings):
        return planning(PlanRequest(history, goal, 0 if previous is None else 4, previous,
                                    PlanningConfig(plan_seed=3, **settings)))

    first = plan(None, ddpm_first_plan=True)
    torch.testing.assert_close(first.states, plan(None, sampler="ddpm").states)
    assert not torch.allclose(first.states, plan(None).states), "a DDIM first plan is another plan"
    torch.testing.assert_close(plan(first, ddpm_first_plan=True).states, plan(first).states)


def test_first_planned_state_is_close_to_the_current_state(default_models):
    planner, invdyn = default_models
    sim = ArmSim()
    state, goal = reach_state(sim, seed=3)
    policy = Policy(planner, invdyn, PolicyConfig(), -sim.torque_limit, sim.torque_limit, sim.dt)
    policy.select_action(state, goal)
    plan = policy._plan.states.numpy()
    assert plan.shape == (8, planner.config.horizon, sim.state_dim)
    # At rest, one control period later the arm cannot have moved more than a few mrad.
    assert np.max(np.abs(plan[:, 0, :3] - state[:3])) < 0.01


def test_settings_change_between_ticks_and_warm_and_cold_start_both_work(default_models):
    planner, invdyn = default_models
    sim = ArmSim()
    state, goal = reach_state(sim, seed=4)
    policy = Policy(planner, invdyn, PolicyConfig(replan_every=1), -sim.torque_limit, sim.torque_limit, sim.dt)
    settings = [PolicyConfig(replan_every=1, planning=PlanningConfig(warm_start=False)),
                PolicyConfig(replan_every=1, planning=PlanningConfig(warm_start=True)),
                PolicyConfig(replan_every=2, planning=PlanningConfig(num_inference_samples=2, num_inference_steps=10)),
                PolicyConfig(replan_every=1, planning=PlanningConfig(num_inference_samples=5, num_inference_steps=2)),
                PolicyConfig(replan_every=3, planning=PlanningConfig(sampler="ddpm", num_inference_samples=1))]
    for config in settings:
        policy.configure(config)
        for _ in range(3):
            action = policy.select_action(state, goal)
            assert policy.status.ok, policy.status.reason
            assert np.all(np.isfinite(action)) and np.all(np.abs(action) <= sim.torque_limit)
            state = sim.step(action)
        assert policy._plan.states.shape[0] == config.planning.num_inference_samples


def test_invalid_input_gives_the_safe_command(default_models):
    planner, invdyn = default_models
    sim = ArmSim()
    state, goal = reach_state(sim, seed=5)
    policy = Policy(planner, invdyn, PolicyConfig(), -sim.torque_limit, sim.torque_limit, sim.dt)
    held = policy.select_action(state, goal)
    assert np.array_equal(policy.select_action(np.full(6, np.nan), goal), held)
    assert policy.status.reason == "invalid state"
    assert np.array_equal(policy.select_action(state[:4], goal), held)
    policy.configure(PolicyConfig(safety=SafetyConfig(safe_mode="zero")))
    ramped = policy.select_action(state, np.array([np.inf, 0.0, 0.0]))
    assert policy.status.reason == "invalid goal"
    assert np.all(np.abs(ramped) <= np.abs(held))


def test_short_closed_loop_run_with_the_committed_models_reaches_its_goals(default_models):
    planner, invdyn = default_models
    sim = ArmSim()
    # Seeded plans: the same run every time, so a model change that breaks reaching shows as a failure.
    policy = Policy(planner, invdyn, PolicyConfig(planning=PlanningConfig(plan_seed=0)), -sim.torque_limit, sim.torque_limit, sim.dt)
    rng = np.random.default_rng(2024)
    reached = []
    for _ in range(6):
        q0, goal = sample_task(sim, rng, TaskConfig().goal_margin)
        policy.reset()
        reached.append(run_episode(sim, policy.select_action, goal, q0, max_steps=400).reached)
    assert sum(reached) >= 5, reached


def test_an_absurd_state_handed_to_the_policy_itself_gives_the_safe_command_not_a_crash(default_models):
    """Behind the node's input checks, the policy's own: a finite but absurd state overflows the planner."""
    planner, invdyn = default_models
    sim = ArmSim()
    state, goal = reach_state(sim, seed=6)
    policy = Policy(planner, invdyn, PolicyConfig(), -sim.torque_limit, sim.torque_limit, sim.dt)
    held = policy.select_action(state, goal)
    command = policy.select_action(np.full(6, 1e30), goal)
    assert not policy.status.ok and "finite" in policy.status.reason
    assert np.array_equal(command, held)


def test_a_position_policy_starts_where_the_arm_is_and_holds_there_when_unsafe(default_models):
    """The position interface: no safe command before the arm was measured; the first command moves from the
    measured position (not from zero) at most the velocity limit per period; the safe one holds it."""
    planner, invdyn = default_models
    sim = ArmSim()
    state, goal = reach_state(sim, seed=5)
    low, high = sim.position_limits.T
    speed = np.full(3, 0.5)
    policy = Policy(planner, invdyn, PolicyConfig(), low, high, sim.dt, interface="position", rate_limit=speed)
    assert not policy.has_safe_command, "nothing measured, nothing commanded: nothing to hold"
    command = policy.select_action(state, goal)
    assert policy.has_safe_command
    assert np.all(np.abs(command - state[:3]) <= speed * sim.dt + 1e-12)
    moved = state.copy()
    moved[:3] += 0.2
    policy.select_action(moved, goal)
    held = [policy.safe_action("stale input") for _ in range(60)]
    assert np.all(np.abs(np.diff(held, axis=0)) <= speed * sim.dt + 1e-12)
    np.testing.assert_allclose(held[-1], moved[:3], atol=1e-12)
    trajectory = np.zeros((planner.config.horizon, 3))
    assert policy.planned_positions(trajectory) == 1, "a safe command plans nothing ahead"
    policy.select_action(moved, goal)
    count = policy.planned_positions(trajectory)
    assert count == planner.config.horizon - policy.status.plan_age_ticks, "the command, then the rest of the plan"
    assert np.all(np.abs(np.diff(trajectory[:count], axis=0)) <= speed * sim.dt + 1e-12)


def test_a_velocity_policy_ramps_to_zero_whatever_the_safe_mode(default_models):
    planner, invdyn = default_models
    sim = ArmSim()
    state, goal = reach_state(sim, seed=6)
    policy = Policy(planner, invdyn, PolicyConfig(safety=SafetyConfig(safe_mode="hold")), np.full(3, -8.0),
                    np.full(3, 8.0), sim.dt, interface="velocity")
    policy.select_action(state, goal)
    held = [policy.safe_action("stale input") for _ in range(200)]
    np.testing.assert_allclose(held[-1], 0.0, atol=1e-9)


def test_ensemble_decay_blends_the_overlapping_plans_the_tick_acts_on(default_models):
    planner, invdyn = default_models
    sim = ArmSim()
    state, goal = reach_state(sim, seed=5)

    def commands(decay: float) -> np.ndarray:
        config = PolicyConfig(ensemble_decay=decay, planning=PlanningConfig(plan_seed=1))
        policy = Policy(planner, invdyn, config, -sim.torque_limit, sim.torque_limit, sim.dt)
        return np.array([policy.select_action(state, goal) for _ in range(2 * config.replan_every)])

    alone, blended = commands(0.0), commands(0.5)
    np.testing.assert_array_equal(alone[:4], blended[:4])  # one plan so far: nothing to blend
    assert not np.allclose(alone[4:], blended[4:], atol=1e-6)
