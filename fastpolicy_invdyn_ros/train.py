"""The trainer: inverse dynamics models and the diffusion planner from demonstrations.

``ros2 run fastpolicy_invdyn_ros trainer --data data/demos.npz --model_type enhanced`` writes
``<output_dir>/invdyn_enhanced_final.pth`` (``planner_final.pth`` for ``--model_type planner``)
and, every ``--checkpoint_every`` steps, a ``*_last.pth`` that ``--resume`` continues from.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from diffusers.optimization import get_cosine_schedule_with_warmup
from torch import nn
from torch.utils.data import BatchSampler, DistributedSampler
from tqdm import tqdm

from . import cli
from .checkpoint import CheckpointError, check_config, read_checkpoint, save_checkpoint
from .data import Episodes, invdyn_windows, load_episodes, planner_windows, split_episodes
from .device import select_device
from .invdyn import INVDYN_TYPES, InvDynConfig, build_invdyn
from .normalization import Normalizer
from .planner import DiffusionPlanner, PlannerConfig

MODEL_TYPES = INVDYN_TYPES + ("planner",)

Batch = dict[str, torch.Tensor]


@dataclass
class TrainConfig:
    """Options of the trainer (each is a ``--flag`` of the same name)."""

    data: list[str] = cli.option(["data/demos.npz"], "demonstration files (NPZ episodes)")
    output_dir: str = cli.option("outputs/train/enhanced_invdyn", "where checkpoints are written")
    model_type: str = cli.option("enhanced", "which model to train", choices=MODEL_TYPES)
    batch_size: int = cli.option(256, "samples per optimizer step")
    lr: float = cli.option(3e-4, "peak learning rate (AdamW, cosine decay after warmup)")
    steps: int = cli.option(5000, "optimizer steps in total")
    probabilistic: bool = cli.option(False, "enhanced model: Gaussian head trained by likelihood")
    temperature: float = cli.option(0.1, "default sampling temperature stored with a probabilistic model")
    seq_length: int = cli.option(3, "states in the inverse dynamics history (sequence models)")
    hidden_dim: int = cli.option(512, "hidden width of the inverse dynamics MLP layers")
    num_layers: int = cli.option(4, "trunk depth of the enhanced model")
    dropout: float = cli.option(0.1, "dropout in the enhanced model's trunk")
    horizon: int = cli.option(16, "planner: number of future states planned")
    n_obs_steps: int = cli.option(2, "planner: number of recent states it is conditioned on")
    val_fraction: float = cli.option(0.1, "fraction of episodes held out for validation")
    seed: int = cli.option(0, "seed for the split, initialization and batches")
    device: str = cli.option("auto", "auto (CUDA when present), cpu, cuda or cuda:N")
    resume: bool = cli.option(False, "continue from <output_dir>/*_last.pth if it exists")
    init_from: str = cli.option("", "start from the weights of this checkpoint (e.g. a converted model)")
    weight_decay: float = cli.option(1e-4, "AdamW weight decay")
    warmup_steps: int = cli.option(100, "linear learning-rate warmup steps")
    grad_clip: float = cli.option(1.0, "clip the gradient norm to this value")
    eval_every: int = cli.option(500, "steps between validations")
    checkpoint_every: int = cli.option(500, "steps between resumable *_last.pth checkpoints")
    progress: bool = cli.option(True, "show a progress bar")

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {self.model_type!r}")
        for name in ("batch_size", "steps", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not self.data:
            raise ValueError("give at least one --data file")

    @property
    def stem(self) -> str:
        """File name stem of the checkpoints, as the seed names them."""
        return "planner" if self.model_type == "planner" else f"invdyn_{self.model_type}"


@dataclass
class TrainResult:
    final_path: Path
    """The checkpoint written at the end."""
    val_metric: float
    """Held-out metric at the end: action MSE (normalized units) or planner denoising loss."""
    samples_per_second: float
    """Training throughput of this run (samples through forward and backward per second)."""


def load_training_data(paths: list[str]) -> Episodes:
    """All demonstration files as one set of episodes (they must share joints and dt)."""
    parts = [load_episodes(path) for path in paths]
    first = parts[0]
    for path, part in zip(paths[1:], parts[1:]):
        if part.joint_names != first.joint_names or not np.isclose(part.dt, first.dt):
            raise ValueError(f"{path}: joints/dt differ from {paths[0]}")
    offsets = np.cumsum([0] + [len(part.states) for part in parts[:-1]])
    return Episodes(
        states=np.concatenate([part.states for part in parts]),
        actions=np.concatenate([part.actions for part in parts]),
        goals=np.concatenate([part.goals for part in parts]),
        episode_ends=np.concatenate([part.episode_ends + offset for part, offset in zip(parts, offsets)]),
        dt=first.dt,
        joint_names=first.joint_names,
    )


def build_model(config: TrainConfig, episodes: Episodes) -> tuple[nn.Module, str, dict]:
    """The model to train, its checkpoint kind and its config as plain values."""
    if config.model_type == "planner":
        planner_config = PlannerConfig(
            state_dim=episodes.state_dim,
            goal_dim=episodes.goal_dim,
            horizon=config.horizon,
            n_obs_steps=config.n_obs_steps,
        )
        return DiffusionPlanner(planner_config), "planner", planner_config.to_dict()
    invdyn_config = InvDynConfig(
        model_type=config.model_type,
        state_dim=episodes.state_dim,
        action_dim=episodes.action_dim,
        seq_length=config.seq_length,
        hidden_dim=config.hidden_dim,
        num_layers=config.num_layers,
        dropout=config.dropout,
        use_probabilistic=config.probabilistic,
    )
    return build_invdyn(invdyn_config), "invdyn", invdyn_config.to_dict()


def make_windows(config: TrainConfig, episodes: Episodes, normalizer: Normalizer, device: torch.device) -> Batch:
    """All training samples of ``episodes``, normalized, as tensors on ``device``."""
    if config.model_type == "planner":
        windows = planner_windows(episodes, config.n_obs_steps, config.horizon)
        normalize = {"history": normalizer.normalize_state, "goal": normalizer.normalize_goal,
                     "future": normalizer.normalize_state}
    else:
        windows = invdyn_windows(episodes, config.seq_length)
        normalize = {"history": normalizer.normalize_state, "next_state": normalizer.normalize_state,
                     "action": normalizer.normalize_action}
    return {name: normalize[name](torch.from_numpy(array)).to(device) for name, array in windows.items()}


def loss_function(model_type: str) -> Callable[[nn.Module, Batch], torch.Tensor]:
    if model_type == "planner":
        return lambda model, batch: model.compute_loss(batch["history"], batch["goal"], batch["future"])
    return lambda model, batch: model.loss(batch["history"], batch["next_state"], batch["action"])


@torch.no_grad()
def validate(model: nn.Module, model_type: str, data: Batch, batch_size: int = 4096) -> float:
    """Held-out action MSE of the mean prediction, or the planner's loss under fixed noise."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for start in range(0, len(next(iter(data.values()))), batch_size):
            batch = {name: tensor[start : start + batch_size] for name, tensor in data.items()}
            if model_type == "planner":
                value = model.compute_loss(batch["history"], batch["goal"], batch["future"])
            else:
                value = torch.mean((model(batch["history"], batch["next_state"]) - batch["action"]) ** 2)
            size = len(batch["history"])
            total, count = total + float(value) * size, count + size
    model.train(was_training)
    return total / count


class BatchStream:
    """Reproducible minibatch indices by step number, so a resumed run sees the same batches.

    Epoch ``e`` is a DistributedSampler permutation seeded by (seed, e); under torchrun each rank
    gets its own shard of it.
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.sampler = DistributedSampler(range(num_samples), num_replicas=world_size, rank=rank, seed=seed)
        self.batch_size = min(batch_size, len(self.sampler))
        self.batches_per_epoch = len(self.sampler) // self.batch_size
        self._epoch = -1
        self._batches: list[list[int]] = []

    def indices(self, step: int) -> torch.Tensor:
        epoch, position = divmod(step, self.batches_per_epoch)
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._batches = list(BatchSampler(self.sampler, self.batch_size, drop_last=True))
            self._epoch = epoch
        return torch.as_tensor(self._batches[position])


def restore(path: Path, config: TrainConfig, model: nn.Module, optimizer, scheduler) -> tuple[int, Normalizer]:
    """Load a ``*_last.pth`` written by this trainer; returns the step to continue from."""
    payload = read_checkpoint(path, kind="planner" if config.model_type == "planner" else "invdyn")
    if "train_state" not in payload:
        raise CheckpointError(f"{path}: has no training state to resume from")
    model.load_state_dict(payload["state_dict"])
    state = payload["train_state"]
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), Normalizer.from_state_dict(payload["normalizer"])


def train(config: TrainConfig) -> TrainResult:
    """Train one model as ``config`` says; returns where it was written and how it did."""
    device = select_device(config.device)
    torch.manual_seed(config.seed)
    episodes = load_training_data(config.data)
    train_episodes, val_episodes = split_episodes(episodes, config.val_fraction, config.seed)
    model, kind, model_config = build_model(config, train_episodes)
    normalizer = Normalizer.fit(train_episodes)
    if config.init_from:
        # Fine-tuning keeps the normalizer the weights were trained with.
        init = read_checkpoint(config.init_from, kind=kind)
        check_config(config.init_from, init["config"], **model_config)
        model.load_state_dict(init["state_dict"])
        normalizer = Normalizer.from_state_dict(init["normalizer"])
    model.to(device).train()

    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, min(config.warmup_steps, config.steps // 10), config.steps)
    output_dir = Path(config.output_dir)
    last_path, final_path = output_dir / f"{config.stem}_last.pth", output_dir / f"{config.stem}_final.pth"
    step = 0
    if config.resume and last_path.exists():
        step, normalizer = restore(last_path, config, model, optimizer, scheduler)
        print(f"resuming {last_path} at step {step}/{config.steps}")

    train_data = make_windows(config, train_episodes, normalizer, device)
    val_data = make_windows(config, val_episodes, normalizer, device)
    if config.model_type != "planner" and step == 0:
        model.calibrate(train_data["history"], train_data["next_state"])
    stream = BatchStream(len(train_data["history"]), config.batch_size, config.seed)
    compute_loss = loss_function(config.model_type)
    metadata = {"joint_names": episodes.joint_names, "dt": episodes.dt, "temperature": config.temperature}

    def save(path: Path, with_train_state: bool, val_metric: float) -> None:
        train_state = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        save_checkpoint(
            path, kind=kind, config=model_config, state_dict=model.state_dict(), normalizer=normalizer,
            metadata={**metadata, "steps": step, "val_metric": val_metric},
            train_state=train_state if with_train_state else None,
        )

    val_metric = float("nan")
    start_step, started = step, time.perf_counter()
    progress = tqdm(total=config.steps, initial=step, desc=config.stem, disable=not config.progress, dynamic_ncols=True)
    while step < config.steps:
        batch = {name: tensor[stream.indices(step).to(device)] for name, tensor in train_data.items()}
        loss = compute_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        progress.update(1)
        if step % config.eval_every == 0 or step == config.steps:
            val_metric = validate(model, config.model_type, val_data)
            progress.set_postfix(loss=f"{loss.item():.4f}", val=f"{val_metric:.4f}")
        if step % config.checkpoint_every == 0 or step == config.steps:
            save(last_path, with_train_state=True, val_metric=val_metric)
    progress.close()
    elapsed = time.perf_counter() - started
    samples_per_second = (step - start_step) * stream.batch_size / max(elapsed, 1e-9)
    save(final_path, with_train_state=False, val_metric=val_metric)
    print(f"wrote {final_path}: val {'mse' if kind == 'invdyn' else 'loss'} {val_metric:.4f}, "
          f"{samples_per_second:.0f} samples/s")
    return TrainResult(final_path, val_metric, samples_per_second)


def main(argv: list[str] | None = None) -> None:
    train(cli.parse(TrainConfig, argv, __doc__))
