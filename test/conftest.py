"""Shared fixtures: real demonstrations from the simulated arm, made once per test session."""
import os
from pathlib import Path

# One intra-op thread in this process and every child: the suite runs several PyTorch processes
# at once on 2 cores, where oversubscribed OpenMP threads slow small models down a hundredfold.
os.environ["OMP_NUM_THREADS"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from fastpolicy_invdyn_ros.core.data import Episodes, save_episodes  # noqa: E402
from fastpolicy_invdyn_ros.sim import CollectConfig, collect  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def demos() -> Episodes:
    """60 scripted-expert episodes of 4 s on the MuJoCo arm (24,000 steps)."""
    return collect(CollectConfig(episodes=60, seed=123))


@pytest.fixture(scope="session")
def demos_path(demos: Episodes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "demos.npz"
    save_episodes(path, demos)
    return path


@pytest.fixture(scope="session")
def tiny_models(demos_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A briefly trained planner and probabilistic enhanced inverse dynamics model (finite, not good).

    Made with the trainer API, as users make theirs; for the node tests, which need real
    checkpoints but not a policy that reaches goals.
    """
    from fastpolicy_invdyn_ros.core.training import TrainConfig, train

    output_dir = tmp_path_factory.mktemp("tiny_models")
    common = dict(data=[str(demos_path)], output_dir=str(output_dir), steps=150, batch_size=64, progress=False,
                  eval_every=1000, checkpoint_every=1000)
    planner = train(TrainConfig(model_type="planner", **common)).final_path
    invdyn = train(TrainConfig(model_type="enhanced", probabilistic=True, hidden_dim=64, num_layers=2,
                               **common)).final_path
    return {"planner_model_path": planner, "invdyn_model_path": invdyn}


@pytest.fixture(scope="session")
def tiny_exports(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Copies of the tiny models with their ONNX exports next to them, made by the ``export_onnx`` command (the
    tiny models themselves stay without: their users get PyTorch)."""
    import shutil

    from fastpolicy_invdyn_ros.tools import export_onnx

    directory = tmp_path_factory.mktemp("tiny_exports")
    copies = {name: Path(shutil.copy(path, directory / Path(path).name)) for name, path in tiny_models.items()}
    assert export_onnx.main(["--checkpoints", *map(str, copies.values())]) == 0
    return copies
