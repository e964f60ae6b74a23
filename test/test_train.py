"""The trainer on real MuJoCo demonstrations: it learns, resumes a killed run exactly, fine-tunes, cleans up
after a kill mid-save, leaves a finished run alone, and refuses a bad checkpoint in one line."""
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from fastpolicy_invdyn_ros.core.checkpoint import CheckpointError, load_invdyn, read_checkpoint
from fastpolicy_invdyn_ros.core.conversion import convert_to_enhanced_invdyn
from fastpolicy_invdyn_ros.core.data import split_episodes
from fastpolicy_invdyn_ros.core.normalization import Normalizer
from fastpolicy_invdyn_ros.core.robot import RobotDescription
from fastpolicy_invdyn_ros.core.training import (TrainConfig, build_model, load_training_data, make_windows, train,
                                                 validate)
from fastpolicy_invdyn_ros.sim import ArmSim
from fastpolicy_invdyn_ros.tools.trainer import main

SMALL = {"hidden_dim": 128, "num_layers": 2, "batch_size": 128, "progress": False}


@pytest.mark.parametrize("model_type", ["mlp", "seq", "enhanced"])
def test_training_beats_predicting_the_mean_by_far(demos_path, tmp_path, model_type):
    # Predicting the mean action scores 1.0 in normalized units.
    result = train(TrainConfig(data=[str(demos_path)], output_dir=str(tmp_path), model_type=model_type,
                               steps=600, lr=1e-3, eval_every=600, **SMALL))
    assert result.final_path.name == f"invdyn_{model_type}_final.pth"
    assert result.val_metric < (0.1 if model_type == "enhanced" else 0.4)
    model = load_invdyn(result.final_path, model_type=model_type, state_dim=6, action_dim=3)
    assert model.normalizer is not None


def test_probabilistic_model_trains_by_likelihood(demos_path, tmp_path):
    result = train(TrainConfig(data=[str(demos_path)], output_dir=str(tmp_path), probabilistic=True,
                               temperature=0.2, steps=600, lr=1e-3, eval_every=600, **SMALL))
    payload = read_checkpoint(result.final_path)
    assert payload["config"]["use_probabilistic"] is True
    assert payload["metadata"]["temperature"] == 0.2
    assert payload["metadata"]["joint_names"] == ["base_yaw", "shoulder_pitch", "elbow_pitch"]
    assert RobotDescription.from_dict(payload["metadata"]["robot"]) == ArmSim().description(), "the data's robot"
    assert result.val_metric < 0.2


def test_data_whose_commands_are_not_the_interface_given_is_refused_in_one_line(demos_path, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--data", str(demos_path), "--output_dir", str(tmp_path), "--command_interface", "position"])
    assert exit.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].endswith("the data's commands are effort, not position"), lines


def run_trainer(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from fastpolicy_invdyn_ros.tools.trainer import main; main()", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("averaging", [[], ["--ema_decay", "0.999"]], ids=["weights", "ema"])
def test_resume_continues_a_killed_run_to_the_same_weights(demos_path, tmp_path, averaging):
    common = ["--data", str(demos_path), "--steps", "300", "--checkpoint_every", "50", "--hidden_dim", "128",
              "--num_layers", "2", "--batch_size", "128", "--no-progress", *averaging]
    uninterrupted = tmp_path / "uninterrupted"
    main(common + ["--output_dir", str(uninterrupted)])

    killed = tmp_path / "killed"
    process = run_trainer(common + ["--output_dir", str(killed)])
    last = killed / "invdyn_enhanced_last.pth"
    deadline = time.monotonic() + 120
    while not last.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    process.kill()
    process.wait()
    assert last.exists()
    step_at_kill = read_checkpoint(last)["train_state"]["step"]
    assert not (killed / "invdyn_enhanced_final.pth").exists(), "the run finished before it could be killed"

    resumed = run_trainer(common + ["--output_dir", str(killed), "--resume"])
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    assert f"resuming {last} at step {step_at_kill}/300" in output

    expected = read_checkpoint(uninterrupted / "invdyn_enhanced_final.pth")["state_dict"]
    actual = read_checkpoint(killed / "invdyn_enhanced_final.pth")["state_dict"]
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-5, atol=1e-6)


def test_the_moving_average_is_what_is_validated_and_saved_not_what_is_trained(demos_path, tmp_path):
    common = {"data": [str(demos_path)], "steps": 100, "lr": 1e-3, "eval_every": 100, "checkpoint_every": 100, **SMALL}
    plain = train(TrainConfig(output_dir=str(tmp_path / "plain"), **common))
    config = TrainConfig(output_dir=str(tmp_path / "ema"), ema_decay=0.999, **common)
    averaged = train(config)
    trained = read_checkpoint(plain.final_path)["state_dict"]
    last = read_checkpoint(tmp_path / "ema" / "invdyn_enhanced_last.pth")
    for name, value in trained.items():  # averaging leaves the optimization alone
        torch.testing.assert_close(last["train_state"]["weights"][name], value)
    saved = read_checkpoint(averaged.final_path)
    assert saved["metadata"]["ema_decay"] == 0.999
    assert not torch.allclose(saved["state_dict"]["mean_head.weight"], trained["mean_head.weight"])

    episodes = load_training_data(config.data)
    model, _ = build_model(config, episodes)
    model.load_state_dict(saved["state_dict"])
    normalizer = Normalizer.from_state_dict(saved["normalizer"])
    held_out = make_windows(config, split_episodes(episodes, config.val_fraction, config.seed)[1], normalizer,
                            torch.device("cpu"))
    assert validate(model, config.model_type, held_out) == pytest.approx(averaged.val_metric, rel=1e-6)
    assert averaged.val_metric < 0.5, "the average follows the training"  # predicting the mean scores 1

    with pytest.raises(CheckpointError, match="was trained with --ema_decay; resume it as it was"):
        train(replace(config, ema_decay=0.0, steps=200, resume=True))


def test_a_converted_model_trains_further(demos_path, tmp_path):
    source = train(TrainConfig(data=[str(demos_path)], output_dir=str(tmp_path / "mlp"), model_type="mlp",
                               steps=200, lr=1e-3, **SMALL))
    converted = tmp_path / "converted.pth"
    convert_to_enhanced_invdyn(source.final_path, state_dim=6, action_dim=3, output_path=converted)
    tuned = train(TrainConfig(data=[str(demos_path)], output_dir=str(tmp_path / "tuned"), init_from=str(converted),
                              steps=300, lr=1e-3, batch_size=128, progress=False))
    assert tuned.val_metric < 0.2


def test_init_from_takes_the_checkpoints_architecture_and_refuses_another_model_type(demos_path, tmp_path):
    source = train(TrainConfig(data=[str(demos_path)], output_dir=str(tmp_path), steps=5, **SMALL))
    # Fine-tuning needs no architecture options: the checkpoint's win over the defaults (512 x 4 here).
    tuned = train(TrainConfig(data=[str(demos_path)], output_dir=str(tmp_path / "tuned"),
                              init_from=str(source.final_path), steps=5, progress=False))
    config = read_checkpoint(tuned.final_path)["config"]
    assert (config["hidden_dim"], config["num_layers"]) == (SMALL["hidden_dim"], SMALL["num_layers"])
    with pytest.raises(ValueError, match="model_type='enhanced' \\(expected 'mlp'\\)"):
        train(TrainConfig(data=[str(demos_path)], output_dir=str(tmp_path / "other"), init_from=str(source.final_path),
                          model_type="mlp", steps=5, progress=False))


def test_a_trainer_killed_mid_save_leaves_no_temporary_after_the_next_run(demos_path, tmp_path):
    """kill -9 while the trainer writes a checkpoint (a large model, saved every step); the resumed run
    removes what the dead one left."""
    output = tmp_path / "killed"
    common = ["--data", str(demos_path), "--hidden_dim", "1024", "--num_layers", "4", "--batch_size", "32",
              "--checkpoint_every", "1", "--no-progress", "--output_dir", str(output)]
    for _ in range(5):  # a save is most of a step here; a kill inside one is the usual case
        process = run_trainer(common + ["--steps", "1000", "--resume"])
        deadline = time.monotonic() + 120
        while not list(output.glob(".*.tmp")) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.001)
        process.kill()
        process.wait()
        if list(output.glob(".*.tmp")):
            break
    left = list(output.glob(".*.tmp"))
    assert left, "no kill landed inside a save"
    resumed = run_trainer(common + ["--steps", "3", "--resume"])
    text, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, text
    assert not any(path.exists() for path in left) and not list(output.glob(".*.tmp"))


def test_resuming_a_finished_run_says_so_and_leaves_its_files_alone(demos_path, tmp_path):
    arguments = ["--data", str(demos_path), "--steps", "20", "--eval_every", "10", "--hidden_dim", "64",
                 "--num_layers", "2", "--no-progress", "--output_dir", str(tmp_path)]
    main(arguments)
    files = {path.name: path.read_bytes() for path in tmp_path.glob("*.pth")}
    assert set(files) == {"invdyn_enhanced_last.pth", "invdyn_enhanced_final.pth"}
    resumed = run_trainer(arguments + ["--resume"])
    text, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, text
    assert "finished at step 20/20 already; nothing to do" in text and "nan" not in text, text
    assert {path.name: path.read_bytes() for path in tmp_path.glob("*.pth")} == files
    val = read_checkpoint(tmp_path / "invdyn_enhanced_final.pth")["metadata"]["val_metric"]
    assert np.isfinite(val)


def test_a_refused_checkpoint_ends_the_trainer_with_one_line(demos_path, tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"format_version": 2, "kind": "invdyn", "config": {}, "state_dict": {}, "normalizer": {},
                "metadata": {}, "hook": Fraction(1, 3)}, evil)  # any object beyond plain data
    trainer = shutil.which("trainer", path=str(Path(sys.executable).parent))
    process = subprocess.run([trainer, "--data", str(demos_path), "--init_from", str(evil),
                              "--output_dir", str(tmp_path / "out")],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 2
    assert "Traceback" not in process.stderr and "weights_only" not in process.stderr
    assert process.stderr.strip().splitlines()[-1] == (f"trainer: error: {evil}: not a checkpoint of this package: "
                                                       "it holds objects other than tensors and plain values, and "
                                                       "such a file is refused without running any of it")
