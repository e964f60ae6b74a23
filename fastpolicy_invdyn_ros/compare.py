"""The four-way comparison of inverse dynamics models on the same held-out episodes.

Trains (or, with ``--reuse``, loads) MLP, sequential GRU, enhanced deterministic and enhanced
probabilistic models on the same demonstrations, then predicts every held-out action from the
true (history, next state) and reports accuracy, smoothness and inference latency. Writes
``comparison.csv`` and ``comparison.png`` to ``--output_dir``.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from . import cli
from .checkpoint import load_invdyn
from .data import Episodes, invdyn_windows, split_episodes
from .device import select_device
from .invdyn import InvDynamic
from .metrics import action_mse, action_sparc, measure_latency, percentiles_ms, rms_jerk
from .train import TrainConfig, load_training_data, train

VARIANTS: dict[str, tuple[str, bool]] = {
    "mlp": ("mlp", False),
    "seq_gru": ("seq", False),
    "enhanced_det": ("enhanced", False),
    "enhanced_prob": ("enhanced", True),
}
"""Variant name -> (model_type, probabilistic), the four the seed README compares."""


@dataclass
class CompareConfig:
    """Options of the comparison."""

    data: list[str] = cli.option(["data/demos.npz"], "demonstration files (NPZ episodes)")
    output_dir: str = cli.option("outputs/compare", "one sub-directory per variant, plus the table and figure")
    steps: int = cli.option(3000, "training steps per variant")
    batch_size: int = cli.option(256, "training batch size")
    seq_length: int = cli.option(3, "history length of the sequence models")
    temperature: float = cli.option(0.1, "sampling temperature of the probabilistic variant")
    val_fraction: float = cli.option(0.1, "fraction of episodes held out (the same split for all variants)")
    seed: int = cli.option(0, "seed for the split and training")
    device: str = cli.option("auto", "auto (CUDA when present), cpu, cuda or cuda:N")
    reuse: bool = cli.option(False, "load the variants' existing final checkpoints instead of training")
    latency_iterations: int = cli.option(300, "timed calls per latency measurement")


@dataclass
class VariantResult:
    variant: str
    action_mse: float
    rms_jerk: float
    sparc: float
    latency_b1_p50_ms: float
    latency_b1_p99_ms: float
    latency_b64_p50_ms: float


@torch.inference_mode()
def predict_episode(model: InvDynamic, episode: Episodes, temperature: float) -> np.ndarray:
    """Unnormalized actions for every transition of one episode, from the true states."""
    normalizer = model.normalizer
    device = normalizer.state_mean.device
    windows = invdyn_windows(episode, model.config.seq_length)
    history = normalizer.normalize_state(torch.from_numpy(windows["history"]).to(device))
    next_state = normalizer.normalize_state(torch.from_numpy(windows["next_state"]).to(device))
    return normalizer.unnormalize_action(model(history, next_state, temperature)).cpu().numpy()


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
        latency_b1_p50_ms=b1["p50"],
        latency_b1_p99_ms=b1["p99"],
        latency_b64_p50_ms=b64["p50"],
    )
    return result, predictions


def reference_row(held_out: Episodes) -> VariantResult:
    """The recorded actions themselves: the smoothness the models are trained to reproduce."""
    true = [invdyn_windows(held_out.episode(i), 1)["action"] for i in range(held_out.num_episodes)]
    return VariantResult("demonstrations", 0.0, float(np.mean([rms_jerk(t) for t in true])),
                         float(np.mean([action_sparc(t, held_out.dt) for t in true])),
                         float("nan"), float("nan"), float("nan"))


def format_table(rows: list[VariantResult]) -> str:
    header = ("variant", "action_mse", "rms_jerk", "sparc", "b1_p50_ms", "b1_p99_ms", "b64_p50_ms")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        values = (row.action_mse, row.rms_jerk, row.sparc, row.latency_b1_p50_ms, row.latency_b1_p99_ms,
                  row.latency_b64_p50_ms)
        lines.append(f"| {row.variant} | " + " | ".join(f"{v:.4f}" if k < 3 else f"{v:.3f}"
                                                       for k, v in enumerate(values)) + " |")
    return "\n".join(lines)


def write_csv(path: Path, rows: list[VariantResult]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(VariantResult.__dataclass_fields__))
        writer.writeheader()
        for row in rows:
            writer.writerow(row.__dict__)


def plot_episode(path: Path, episode: Episodes, predictions: dict[str, np.ndarray]) -> None:
    """Predicted vs recorded actions over one held-out episode, one panel per joint."""
    true = invdyn_windows(episode, 1)["action"]
    time_s = np.arange(len(true)) * episode.dt
    fig, axes = plt.subplots(episode.action_dim, 1, figsize=(10, 2.6 * episode.action_dim), sharex=True)
    for joint, ax in enumerate(np.atleast_1d(axes)):
        ax.plot(time_s, true[:, joint], color="black", linewidth=2.0, label="recorded")
        for name, predicted in predictions.items():
            ax.plot(time_s, predicted[:, joint], linewidth=1.0, label=name)
        ax.set_ylabel(f"{episode.joint_names[joint]} [Nm]")
    np.atleast_1d(axes)[0].legend(loc="upper right", ncol=5, fontsize=8)
    np.atleast_1d(axes)[-1].set_xlabel("time [s]")
    fig.suptitle("Inverse dynamics on a held-out episode: predicted vs recorded actions")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    plot_episode(output_dir / "comparison.png", held_out.episode(0), first_episode)
    print(format_table(rows))
    print(f"wrote {output_dir / 'comparison.csv'} and {output_dir / 'comparison.png'}")
    return rows


def main(argv: list[str] | None = None) -> None:
    compare(cli.parse(CompareConfig, argv, __doc__))
