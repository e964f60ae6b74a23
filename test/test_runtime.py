"""The ONNX Runtime runtime (``core.runtime``) on real checkpoints and real exports: every exported graph
against PyTorch (sampling at a temperature with fixed noise included), the refusal of a stale export, and
the fall back to PyTorch when an export does not compute what its checkpoint does."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from fastpolicy_invdyn_ros.core.actions import InvDynTick, TorchActionStep
from fastpolicy_invdyn_ros.core.checkpoint import load_invdyn, load_planner, read_checkpoint, save_checkpoint
from fastpolicy_invdyn_ros.core.normalization import Normalizer
from fastpolicy_invdyn_ros.core.planner import shift_plan
from fastpolicy_invdyn_ros.core.planning import Planning, PlanningConfig, PlanRequest
from fastpolicy_invdyn_ros.core.policy import Policy, PolicyConfig
from fastpolicy_invdyn_ros.core.runtime import (PARITY_TOLERANCE, ExportError, OnnxActionStep, OnnxPlannerNetworks,
                                                StaleExportError, export_paths, load_action_step,
                                                load_planner_networks)
from fastpolicy_invdyn_ros.sim import ArmSim, ExpertConfig, ScriptedExpert, TaskConfig, run_episode, sample_task

INVDYN, PLANNER = "invdyn_model_path", "planner_model_path"


def raw_states(model, count: int, generator: torch.Generator) -> torch.Tensor:
    return model.normalizer.unnormalize_state(torch.randn(count, model.config.state_dim, generator=generator))


def test_the_inverse_dynamics_export_computes_what_pytorch_does_also_sampling_at_a_temperature(tiny_exports) -> None:
    model = load_invdyn(tiny_exports[INVDYN])
    assert model.config.use_probabilistic, "the tiny model samples: temperature and noise matter"
    step, choice = load_action_step(model, tiny_exports[INVDYN], "onnxruntime")
    assert isinstance(step, OnnxActionStep) and choice.runtime == "onnxruntime" and not choice.fallback
    generator = torch.Generator().manual_seed(3)
    tick = InvDynTick(model)
    with torch.inference_mode():
        for samples in (1, 3, 8):
            history = raw_states(model, model.config.seq_length, generator)[None]
            next_states = raw_states(model, samples, generator)[None]
            noise = torch.randn(1, samples, model.config.action_dim, generator=generator)
            for temperature in (0.0, 0.7):
                inputs = dict(history=history, next_states=next_states, temperature=torch.tensor(temperature),
                              noise=noise)
                expected = tick(**inputs).numpy()
                assert np.abs(step.run_with_noise(inputs) - expected).max() < PARITY_TOLERANCE
            sampled, mean = tick(**inputs), tick(**{**inputs, "temperature": torch.tensor(0.0)})
            assert (sampled - mean).abs().max() > 1e-3, "the noise input is used at temperature > 0"
            # The tick's own call (bound buffers) at temperature 0 is the mean, as in PyTorch.
            expected_mean = TorchActionStep(model)(history[0].numpy(), next_states[0].numpy(), 0.0)
            tick_mean = step(history[0].numpy(), next_states[0].numpy(), 0.0)
            assert np.abs(tick_mean - expected_mean).max() < PARITY_TOLERANCE


def test_the_planner_exports_compute_what_pytorch_does_and_plan_the_same(tiny_exports) -> None:
    planner = load_planner(tiny_exports[PLANNER])
    networks, choice = load_planner_networks(planner, tiny_exports[PLANNER], "onnxruntime")
    assert isinstance(networks, OnnxPlannerNetworks) and choice.runtime == "onnxruntime"
    c = planner.config
    generator = torch.Generator().manual_seed(4)
    history = raw_states(planner, c.n_obs_steps, generator)
    goal = history[-1, : c.goal_dim] + 0.3
    config = PlanningConfig(num_inference_samples=5, plan_seed=7)
    request = PlanRequest(history, goal, origin_tick=0, previous=None, config=config)
    with torch.inference_mode():
        condition = planner.encode_condition(planner.normalizer.normalize_state(history)[None],
                                             torch.randn(1, c.goal_dim, generator=generator))
        x = torch.randn(5, c.horizon, c.state_dim, generator=generator)
        cond = condition.expand(5, -1)
        for t in (0, c.num_train_timesteps - 1):
            timestep = torch.tensor(t)
            assert (networks.denoise(x, timestep, cond) - planner.denoise(x, timestep, cond)).abs().max() < 1e-4
        in_torch, in_onnx = Planning(planner)(request), Planning(planner, networks)(request)
    assert in_torch.chosen == in_onnx.chosen
    assert (in_torch.states - in_onnx.states).abs().max() < 1e-3  # raw states after 5 DDIM steps


def test_the_bound_ddim_loop_plans_what_plain_session_runs_plan(tiny_exports) -> None:
    """``OnnxPlannerNetworks.denoise_ddim`` (buffers bound once per batch size, the update in NumPy) against the
    same steps through ``denoise`` (a plain ``session.run`` per step) and ``DDIMScheduler.step``; the batch size
    changing between plans rebinds, and a plan returned is not overwritten by the next."""
    planner = load_planner(tiny_exports[PLANNER])
    networks, _ = load_planner_networks(planner, tiny_exports[PLANNER], "onnxruntime")
    c = planner.config
    scheduler = planner._schedulers["ddim"]
    generator = torch.Generator().manual_seed(5)
    plans = []
    with torch.inference_mode():
        for samples, steps, warm in ((8, 5, True), (3, 4, False), (8, 5, False), (1, 1, True)):
            schedule = planner._ddim_schedule(steps, warm)
            x = torch.randn(samples, c.horizon, c.state_dim, generator=generator)
            cond = torch.randn(samples, c.cond_dim, generator=generator)
            if warm:  # as sample passes one condition row: expanded to the samples, a stride of 0
                cond = cond[:1].expand(samples, -1)
            prior = shift_plan(x, 1) if warm else None  # a warm start's previous plan
            plain = x if prior is None else scheduler.add_noise(prior, x, torch.tensor([schedule.steps[0].timestep]))
            for step in schedule.steps:
                expected = scheduler.step(networks.denoise(plain, torch.tensor(step.timestep), cond), step.timestep,
                                          plain)
                plain = expected.prev_sample
            bound = networks.denoise_ddim(x, cond, schedule, prior)
            assert torch.equal(bound, expected.pred_original_sample)
            plans.append((bound, bound.clone()))
    assert all(torch.equal(plan, copy) for plan, copy in plans)


def test_the_denoiser_export_runs_its_convolutions_in_2d_and_the_group_norm_affine_as_batch_norm(tiny_exports) -> None:
    """``core/onnx_ops.py``'s translations are the ones used (the parity tests above check what they compute)."""
    export = onnx.load(export_paths(tiny_exports[PLANNER])["denoiser"])
    convolutions = [node for node in export.graph.node if node.op_type in ("Conv", "ConvTranspose")]
    kinds = {node.op_type for node in export.graph.node}
    assert convolutions and "BatchNormalization" in kinds and "Softplus" not in kinds, kinds
    for node in convolutions:
        assert len(next(a for a in node.attribute if a.name == "strides").ints) == 2, node.name
    splits = {output for node in export.graph.node if node.op_type == "Split" for output in node.output}
    assert splits and not any(node.op_type == "Mul" and set(node.input) & splits for node in export.graph.node), \
        "every FiLM is one BatchNormalization"


def test_the_film_rewrite_computes_scale_times_h_plus_bias() -> None:
    """``onnx_ops.film_as_batch_norm`` on a FiLM graph (a linear's output split into scale and bias, each
    (N, C, 1), against h (N, C, L)), run in ONNX Runtime before and after, for two batch sizes."""
    import onnxruntime
    from onnx import TensorProto, helper

    from fastpolicy_invdyn_ros.core.onnx_ops import film_as_batch_norm

    channels, length = 4, 5
    graph = helper.make_graph(
        [helper.make_node("Unsqueeze", ["film", "last"], ["film_3d"]),
         helper.make_node("Split", ["film_3d"], ["scale", "bias"], axis=1, num_outputs=2),
         helper.make_node("Mul", ["scale", "h"], ["scaled"]),
         helper.make_node("Add", ["scaled", "bias"], ["output"])],
        "film", [helper.make_tensor_value_info("h", TensorProto.FLOAT, ["n", channels, length]),
                 helper.make_tensor_value_info("film", TensorProto.FLOAT, ["n", 2 * channels])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", channels, length])],
        [numpy_helper.from_array(np.array([-1], np.int64), "last")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    before = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert film_as_batch_norm(model) == 1
    onnx.checker.check_model(model)
    assert "Mul" not in {node.op_type for node in model.graph.node}
    after = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for n in (1, 3):
        feeds = {"h": rng.standard_normal((n, channels, length), np.float32),
                 "film": rng.standard_normal((n, 2 * channels), np.float32)}
        expected = feeds["film"][:, :channels, None] * feeds["h"] + feeds["film"][:, channels:, None]
        assert np.allclose(before.run(None, feeds)[0], expected, atol=1e-6)
        assert np.allclose(after.run(None, feeds)[0], expected, atol=1e-6)


def test_a_stale_export_is_refused_and_auto_says_why_it_uses_pytorch(tiny_exports, tmp_path: Path) -> None:
    checkpoint = Path(shutil.copy(tiny_exports[INVDYN], tmp_path / "invdyn.pth"))
    shutil.copy(export_paths(tiny_exports[INVDYN])["tick"], tmp_path / "invdyn.onnx")
    model = load_invdyn(checkpoint)
    assert load_action_step(model, checkpoint, "onnxruntime")[1].runtime == "onnxruntime"
    # Retrained: the same file name, other weights; the export next to it is the old model's.
    payload = read_checkpoint(checkpoint)
    weights = {name: tensor + 0.01 for name, tensor in payload["state_dict"].items()}
    save_checkpoint(checkpoint, kind="invdyn", config=payload["config"], state_dict=weights,
                    normalizer=Normalizer.from_state_dict(payload["normalizer"]), metadata=payload["metadata"])
    model = load_invdyn(checkpoint)
    with pytest.raises(StaleExportError, match="stale ONNX export"):
        load_action_step(model, checkpoint, "onnxruntime")
    step, choice = load_action_step(model, checkpoint, "auto")
    assert isinstance(step, TorchActionStep) and choice.runtime == "torch" and choice.fallback
    assert "stale" in choice.reason and "export_onnx" in choice.reason


def test_without_an_export_auto_uses_pytorch_and_onnxruntime_is_refused(tiny_models) -> None:
    model = load_invdyn(tiny_models[INVDYN])
    step, choice = load_action_step(model, tiny_models[INVDYN], "auto")
    assert isinstance(step, TorchActionStep) and choice.runtime == "torch" and not choice.fallback
    assert "no ONNX export" in choice.reason
    with pytest.raises(ExportError, match="no ONNX export"):
        load_action_step(model, tiny_models[INVDYN], "onnxruntime")
    assert load_action_step(model, tiny_models[INVDYN], "torch")[1].reason == "runtime torch requested"


def test_an_export_that_computes_something_else_falls_back_to_pytorch_with_a_warning(tiny_exports) -> None:
    """An export of the checkpoint, stamped with its identity, whose weights were changed afterwards (a broken
    exporter, an edited file) fails the probe: PyTorch runs, and the choice is a warning."""
    checkpoint = tiny_exports[INVDYN]
    export = onnx.load(export_paths(checkpoint)["tick"])
    weights = max(export.graph.initializer, key=lambda tensor: np.prod(tensor.dims))
    weights.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weights) + 0.1, weights.name))
    wrong_dir = checkpoint.parent / "wrong"
    wrong_dir.mkdir()
    wrong = Path(shutil.copy(checkpoint, wrong_dir / checkpoint.name))
    onnx.save(export, export_paths(wrong)["tick"])
    model = load_invdyn(wrong)
    step, choice = load_action_step(model, wrong, "onnxruntime")
    assert isinstance(step, TorchActionStep) and choice.runtime == "torch" and choice.fallback
    assert "differs from PyTorch" in choice.reason


def test_the_policy_commands_the_same_in_either_runtime(tiny_exports) -> None:
    """The control tick end to end (inline seeded plans, the tick's own bound buffers, the smoother) on states of an
    expert reach: ONNX Runtime's commands are PyTorch's."""
    planner, model = load_planner(tiny_exports[PLANNER]), load_invdyn(tiny_exports[INVDYN])
    sim = ArmSim()
    q0, goal = sample_task(sim, np.random.default_rng(0), TaskConfig().goal_margin)
    states = run_episode(sim, ScriptedExpert(sim, ExpertConfig(), np.random.default_rng(0)), goal, q0, 30).states
    config = PolicyConfig(planning=PlanningConfig(plan_seed=0, num_inference_samples=4))
    commands = []
    for runtime in ("torch", "onnxruntime"):
        step, _ = load_action_step(model, tiny_exports[INVDYN], runtime)
        networks, _ = load_planner_networks(planner, tiny_exports[PLANNER], runtime)
        policy = Policy(planner, model, config, -sim.torque_limit, sim.torque_limit, sim.dt, action_step=step,
                        planning=Planning(planner, networks))
        commands.append(np.array([policy.select_action(state, goal) for state in states]))
        assert policy.status.ok, policy.status.reason
    assert np.abs(commands[0] - commands[1]).max() < 1e-3  # torques after DDIM plans, smoothing and 30 ticks
