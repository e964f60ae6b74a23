"""Diffusion planner: shapes, samplers, warm start, config round trip, and that a short training
run learns a conditional plan (the first planned state follows history and goal)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from fastpolicy_invdyn_ros.core.planner import DiffusionPlanner, PlannerConfig, shift_plan

S, G, H = 6, 3, 16


def small_config(**overrides) -> PlannerConfig:
    values = dict(state_dim=S, goal_dim=G, horizon=H, n_obs_steps=2, down_dims=(32, 64), cond_dim=64,
                  timestep_embed_dim=32)
    values.update(overrides)
    return PlannerConfig(**values)


def condition(batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 2, S, generator=g), torch.randn(batch, G, generator=g)


def reach_future(history: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """States are 3 joint positions then velocities. From the current position p the plan heads to
    the goal at the constant velocity v = (g - p) / 2: s_{t+k} = [p + 0.1 k v, v]."""
    p = history[:, -1, :3]
    v = (goal - p) / 2
    k = torch.arange(1, H + 1, dtype=torch.float32)[None, :, None]
    return torch.cat([p[:, None] + 0.1 * k * v[:, None], v[:, None].expand(-1, H, -1)], dim=-1)


def reach_batch(batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(history, goal, future); the velocity in the history is unrelated to the plan, so the plan
    depends on both the history (through p) and the goal."""
    p = torch.randn(batch, 3, generator=generator)
    goal = torch.randn(batch, 3, generator=generator)
    v_prev = 0.5 * torch.randn(batch, 3, generator=generator)
    history = torch.stack([torch.cat([p - 0.1 * v_prev, v_prev], -1), torch.cat([p, v_prev], -1)], dim=1)
    return history, goal, reach_future(history, goal)


@pytest.fixture(scope="module")
def trained() -> tuple[DiffusionPlanner, list[float]]:
    torch.manual_seed(0)
    planner = DiffusionPlanner(small_config(down_dims=(16, 32), cond_dim=32))
    optimizer = torch.optim.Adam(planner.parameters(), lr=3e-3)
    data = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(300):
        loss = planner.compute_loss(*reach_batch(64, data))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return planner, losses


def test_cold_and_warm_start_shapes_as_steps_and_samples_change():
    planner = DiffusionPlanner(small_config())
    history, goal = condition(batch=2)
    for num_samples, steps in ((1, None), (3, 2), (8, 10), (3, 1)):
        plans = planner.sample(history, goal, num_samples=num_samples, num_inference_steps=steps)
        assert plans.shape == (2, num_samples, H, S)
        assert torch.isfinite(plans).all()
        shared = planner.sample(history, goal, num_samples, steps, warm_start=shift_plan(plans[:, 0], 1))
        per_sample = planner.sample(history, goal, num_samples, steps, warm_start=shift_plan(plans, 2))
        assert shared.shape == per_sample.shape == (2, num_samples, H, S)
    assert not plans.requires_grad


def test_warm_start_runs_the_tail_of_the_schedule():
    planner = DiffusionPlanner(small_config(num_inference_steps=4, warm_start_strength=0.5))
    history, goal = condition(batch=1)
    timesteps = []
    planner.unet.register_forward_hook(lambda module, args, output: timesteps.append(int(args[1])))
    plan = planner.sample(history, goal, num_samples=2)
    assert timesteps == [99, 74, 49, 24]  # 'trailing' spacing: a cold start begins at pure noise
    timesteps.clear()
    planner.sample(history, goal, num_samples=2, warm_start=shift_plan(plan, 1))
    assert timesteps == [49, 24]
    timesteps.clear()
    planner.sample(history, goal, num_samples=2, num_inference_steps=10, warm_start=shift_plan(plan, 1), sampler="ddpm")
    assert timesteps == [49, 39, 29, 19, 9]


@pytest.mark.parametrize("prediction_type", ["sample", "epsilon"])
def test_the_ddim_update_is_the_diffusers_schedulers_step_in_torch_and_numpy(prediction_type):
    """``DdimStep`` (what ``sample`` runs, in either runtime) against ``DDIMScheduler.step`` itself, every step of
    cold and warm schedules (the last one ends at alpha 1), and the warm start's noising against ``add_noise``."""
    planner = DiffusionPlanner(small_config(prediction_type=prediction_type))
    scheduler = planner._schedulers["ddim"]
    generator = torch.Generator().manual_seed(0)
    for steps in (1, 4, 5, 10):
        for warm in (False, True):
            schedule = planner._ddim_schedule(steps, warm)
            assert [step.timestep for step in schedule.steps] == (
                planner._warm_tail(scheduler.timesteps.tolist()) if warm else scheduler.timesteps.tolist())
            for step in schedule.steps:
                output, sample = torch.randn(2, 3, H, S, generator=generator).unbind(0)
                expected = scheduler.step(output, step.timestep, sample)
                for got in (step(output, sample), step(output.numpy(), sample.numpy())):
                    assert np.array_equal(np.asarray(got[0]), expected.prev_sample.numpy())
                    assert np.array_equal(np.asarray(got[1]), expected.pred_original_sample.numpy())
            prior, noise = torch.randn(2, 3, H, S, generator=generator).unbind(0)
            expected = scheduler.add_noise(prior, noise, torch.tensor([schedule.steps[0].timestep]))
            assert torch.equal(schedule.add_noise(prior, noise), expected)
            assert np.array_equal(schedule.add_noise(prior.numpy(), noise.numpy()), expected.numpy())


def test_ddim_plans_are_those_of_the_diffusers_loop():
    """``sample`` with DDIM, cold and warm, equals the loop it replaced: the network, then ``DDIMScheduler.step``."""
    planner = DiffusionPlanner(small_config())
    scheduler = planner._schedulers["ddim"]
    history, goal = condition(batch=2)

    def diffusers_loop(warm_start: torch.Tensor | None, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        cond = planner.encode_condition(history, goal).repeat_interleave(3, dim=0)
        x = torch.randn(6, H, S, generator=generator)
        scheduler.set_timesteps(5)
        timesteps = scheduler.timesteps.tolist()
        if warm_start is not None:
            timesteps = timesteps[-2:]  # round(0.5 * 5)
            x = scheduler.add_noise(warm_start.reshape(6, H, S), x, torch.tensor([timesteps[0]]))
        for t in timesteps:
            step = scheduler.step(planner.denoise(x, torch.tensor(t), cond), t, x)
            x = step.prev_sample
        return step.pred_original_sample.reshape(2, 3, H, S)

    with torch.inference_mode():
        cold = planner.sample(history, goal, 3, 5, generator=torch.Generator().manual_seed(1))
        assert torch.equal(cold, diffusers_loop(None, 1))
        warm = planner.sample(history, goal, 3, 5, warm_start=shift_plan(cold, 1),
                              generator=torch.Generator().manual_seed(2))
        assert torch.equal(warm, diffusers_loop(shift_plan(cold, 1), 2))


def test_ddpm_sampler_runs_all_training_steps():
    planner = DiffusionPlanner(small_config())
    history, goal = condition(batch=1)
    plans = planner.sample(history, goal, num_samples=4, sampler="ddpm")
    assert plans.shape == (1, 4, H, S)
    assert torch.isfinite(plans).all()
    assert len(planner._schedulers["ddpm"].timesteps) == planner.config.num_train_timesteps


def test_bad_inputs_are_refused_with_the_expected_shape():
    planner = DiffusionPlanner(small_config())
    history, goal = condition(batch=2)
    with pytest.raises(ValueError, match="warm_start"):
        planner.sample(history, goal, num_samples=3, warm_start=torch.zeros(2, 2, H, S))
    with pytest.raises(ValueError, match="history"):
        planner.sample(history[:, :1], goal)
    with pytest.raises(ValueError, match="goal"):
        planner.sample(history, None)
    with pytest.raises(ValueError, match="sampler"):
        planner.sample(history, goal, sampler="euler")


def test_planner_without_goal():
    planner = DiffusionPlanner(small_config(goal_dim=0))
    history, _ = condition(batch=2)
    assert planner.sample(history, num_samples=2).shape == (2, 2, H, S)
    assert planner.compute_loss(history, None, torch.randn(2, H, S)).ndim == 0


def test_seeded_generator_reproduces_samples():
    planner = DiffusionPlanner(small_config())
    history, goal = condition(batch=2)

    def draw(seed: int, **kwargs) -> torch.Tensor:
        return planner.sample(history, goal, num_samples=4, generator=torch.Generator().manual_seed(seed), **kwargs)

    assert torch.equal(draw(1), draw(1))
    assert not torch.equal(draw(1), draw(2))
    assert torch.equal(draw(3, sampler="ddpm", num_inference_steps=20), draw(3, sampler="ddpm", num_inference_steps=20))


def test_shift_plan_drops_the_past_and_repeats_the_last_state():
    plan = torch.arange(5.0)[None, :, None].expand(2, 5, 3)
    assert shift_plan(plan, 0).equal(plan)
    assert shift_plan(plan, 2)[0, :, 0].tolist() == [2.0, 3.0, 4.0, 4.0, 4.0]
    assert shift_plan(plan, 9)[0, :, 0].tolist() == [4.0] * 5


def test_config_round_trip_through_a_weights_only_checkpoint():
    config = small_config(prediction_type="epsilon", num_inference_steps=4, warm_start_strength=0.5)
    planner = DiffusionPlanner(config)
    buffer = io.BytesIO()
    torch.save({"config": config.to_dict(), "state_dict": planner.state_dict()}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert PlannerConfig.from_dict(loaded["config"]) == config
    clone = DiffusionPlanner(PlannerConfig.from_dict(loaded["config"]))
    clone.load_state_dict(loaded["state_dict"])
    history, goal = condition(batch=1)
    expected = planner.sample(history, goal, num_samples=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(clone.sample(history, goal, num_samples=2, generator=torch.Generator().manual_seed(0)), expected)


@pytest.mark.parametrize("bad", [
    dict(horizon=9),  # odd: two U-Net levels need an even horizon
    dict(down_dims=(30, 64)),  # not a multiple of n_groups
    dict(kernel_size=4),
    dict(prediction_type="v_prediction"),
    dict(num_inference_steps=101),
    dict(warm_start_strength=0.0),
    dict(goal_dim=-1),
])
def test_invalid_config_is_refused(bad):
    with pytest.raises(ValueError):
        small_config(**bad)


def test_from_dict_refuses_unknown_fields():
    with pytest.raises(ValueError, match="unknown"):
        PlannerConfig.from_dict({**small_config().to_dict(), "dropout": 0.1})


def test_training_loss_decreases(trained):
    _, losses = trained
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < 0.2 * first, (first, last)


def test_trained_planner_follows_history_and_goal(trained):
    planner, _ = trained
    history, goal, future = reach_batch(64, torch.Generator().manual_seed(123))
    data_std = future[:, 0].std(dim=0).mean()

    def first_state_error(plans: torch.Tensor, expected: torch.Tensor) -> float:
        return ((plans[:, :, 0] - expected[:, None, 0]).pow(2).mean().sqrt() / data_std).item()

    def draw(goal: torch.Tensor, **kwargs) -> torch.Tensor:
        return planner.sample(history, goal, num_samples=8, generator=torch.Generator().manual_seed(0), **kwargs)

    assert first_state_error(draw(goal), future) < 0.25
    # A warm start from the plan made one step earlier (shifted by one) lands on the same states.
    earlier = torch.cat([history[:, -1:], future[:, :-1]], dim=1)
    assert first_state_error(draw(goal, warm_start=shift_plan(earlier, 1)), future) < 0.25
    # Swap goals across the batch: each plan now heads to its new goal.
    other_goal = goal.roll(1, dims=0)
    assert first_state_error(draw(other_goal), reach_future(history, other_goal)) < 0.25
