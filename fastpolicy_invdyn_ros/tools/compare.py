"""The four-way comparison of inverse dynamics models on the same held-out episodes.

Trains (or, with ``--reuse``, loads) MLP, sequential GRU, enhanced deterministic and enhanced
probabilistic models on the same demonstrations, then predicts every held-out action from the
true (history, next state) and reports accuracy, smoothness and inference latency. Writes
``comparison.csv`` and ``comparison.png`` to ``--output_dir``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.checkpoint import load_invdyn
from ..core.data import Episodes, invdyn_windows, split_episodes
from ..core.device import select_device
from ..core.invdyn import InvDynamic
from ..core.metrics import action_mse, action_sparc, measure_latency, percentiles_ms, rms_jerk
from ..core.settings import setting
from ..core.training import TrainConfig, load_training_data, train
from . import cli
from .plots import plot_predicted_actions
from .tables import markdown_table, write_csv

VARIANTS: dict[str, tuple[str, bool]] = {
    "mlp": ("mlp", False),
    "seq_gru": ("seq", False),
    "enhanced_det": ("enhanced", False),
    "enhanced_prob": ("enhanced", True),
}
"""Variant name -> (model_type, probabilistic), the four the seed README compares."""


@dataclass
class CompareConfig:
    """What to compare on: the ``compare`` command line."""

    data: list[str] = setting(["data/demos.npz"])
    """Demonstration files (NPZ episodes)."""
    output_dir: str = "outputs/compare"
    """One sub-directory per variant, plus the table and the figure."""
    steps: int = setting(3000, low=1)
    """Training steps per variant."""
    batch_size: int = setting(256, low=1)
    """Training batch size."""
    seq_length: int = setting(3, low=1)
    """History length of the sequence models."""
    temperature: float = setting(0.1, low=0.0)
    """Sampling temperature of the probabilistic variant."""
    val_fraction: float = setting(0.1, low=0.0, high=1.0)
    """Fraction of episodes held out (the same split for every variant)."""
    seed: int = 0
    """Seed of the split and the training."""
    device: str = "auto"
    """auto (CUDA when present), cpu, cuda or cuda:N."""
    reuse: bool = False
    """Load the variants' existing final checkpoints instead of training them."""
    latency_iterations: int = setting(300, low=1)
    """Timed calls per latency measurement."""


@dataclass
class VariantResult:
    variant: str
    action_mse: float
    rms_jerk: float
    sparc: float
    b1_p50_ms: float
    b1_p99_ms: float
    b64_p50_ms: float


@torch.inference_mode()
def predict_episode(model: InvDynamic, episode: Episodes, temperature: float) -> np.ndarray:
    """Unnormalized actions for every transition of one episode, from the true states."""
    normalizer = model.normalizer
    device = normalizer.state_mean.device
    windows = invdyn_windows(episode, model.config.seq_length)
    history = normalizer.normalize_state(torch.from_numpy(windows["history"]).to(device))
    next_state = normalizer.normalize_state(torch.from_numpy(windows["next_state"]).to(device))
    current = torch.from_numpy(windows["history"][:, -1]).to(device)
    return normalizer.unnormalize_action(model(history, next_state, temperature), current).cpu().numpy()


def inference_latency(model: InvDynamic, batch_size: int, iterations: int) -> dict[str, float]:
    """p50/p99 of one forward pass at ``batch_size`` on the model's device, with one intra-op thread
    as the node runs it (more threads only add synchronization at these sizes)."""
    device = model.normalizer.state_mean.device
    history = torch.randn(batch_size, model.config.seq_length, model.config.state_dim, device=device)
    next_state = torch.randn(batch_size, model.config.state_dim, device=device)

    @torch.inference_mode()
    def call() -> None:
        model(history, next_state)
        if device.type == "cuda":
            torch.cuda.synchronize()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return percentiles_ms(measure_latency(call, iterations))
    finally:
        torch.set_num_threads(threads)


def evaluate_variant(name: str, model: InvDynamic, held_out: Episodes, temperature: float,
                     iterations: int) -> tuple[VariantResult, list[np.ndarray]]:
    predictions = [predict_episode(model, held_out.episode(i), temperature) for i in range(held_out.num_episodes)]
    true = [invdyn_windows(held_out.episode(i), 1)["action"] for i in range(held_out.num_episodes)]
    action_std = model.normalizer.action_std.cpu().numpy()
    b1 = inference_latency(model, 1, iterations)
    b64 = inference_latency(model, 64, iterations)
    result = VariantResult(
        variant=name,
        action_mse=action_mse(np.concatenate(predictions), np.concatenate(true), action_std),
        rms_jerk=float(np.mean([rms_jerk(p) for p in predictions])),
        sparc=float(np.mean([action_sparc(p, held_out.dt) for p in predictions])),
        b1_p50_ms=b1["p50"],
        b1_p99_ms=b1["p99"],
        b64_p50_ms=b64["p50"],
    )
    return result, predictions


def reference_row(held_out: Episodes) -> VariantResult:
    """The recorded actions themselves: the smoothness the models are trained to reproduce."""
    true = [invdyn_windows(held_out.episode(i), 1)["action"] for i in range(held_out.num_episodes)]
    return VariantResult("demonstrations", 0.0, float(np.mean([rms_jerk(t) for t in true])),
                         float(np.mean([action_sparc(t, held_out.dt) for t in true])),
                         float("nan"), float("nan"), float("nan"))


def compare(config: CompareConfig) -> list[VariantResult]:
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    device = select_device(config.device)
    episodes = load_training_data(config.data)
    _, held_out = split_episodes(episodes, config.val_fraction, config.seed)
    rows, first_episode = [reference_row(held_out)], {}
    for name, (model_type, probabilistic) in VARIANTS.items():
        train_config = TrainConfig(
            data=config.data, output_dir=str(output_dir / name), model_type=model_type,
            batch_size=config.batch_size, steps=config.steps, probabilistic=probabilistic,
            temperature=config.temperature, seq_length=config.seq_length, val_fraction=config.val_fraction,
            seed=config.seed, device=config.device,
        )
        path = output_dir / name / f"{train_config.stem}_final.pth"
        if not (config.reuse and path.exists()):
            path = train(train_config).final_path
        model = load_invdyn(path, device)
        temperature = config.temperature if probabilistic else 0.0
        result, predictions = evaluate_variant(name, model, held_out, temperature, config.latency_iterations)
        rows.append(result)
        first_episode[name] = predictions[0]
    write_csv(output_dir / "comparison.csv", rows)
    episode = held_out.episode(0)
    recorded = invdyn_windows(episode, 1)["action"]
    plot_predicted_actions(output_dir / "comparison.png", np.arange(len(recorded)) * episode.dt, recorded,
                           first_episode, episode.robot.action_labels)
    print(markdown_table(rows))
    print(f"wrote {output_dir / 'comparison.csv'} and {output_dir / 'comparison.png'}")
    return rows


def main(argv: list[str] | None = None) -> int:
    return cli.run(CompareConfig, compare, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
