"""Training: inverse dynamics models and the diffusion planner from demonstrations.

``train(TrainConfig(...))`` writes ``<output_dir>/invdyn_<model_type>_final.pth``
(``planner_final.pth`` for the planner) and, every ``checkpoint_every`` steps, a ``*_last.pth``
that ``resume`` continues from. ``tools.trainer`` is its command line.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import torch
from diffusers.optimization import get_cosine_schedule_with_warmup
from torch import distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DistributedSampler
from tqdm import tqdm

from .bags import BagReadConfig, read_bag_episodes
from .checkpoint import CheckpointError, check_config, read_checkpoint, save_checkpoint
from .data import Episodes, invdyn_windows, load_episodes, planner_windows, split_episodes
from .device import select_device
from .files import remove_stale_temporaries
from .invdyn import INVDYN_TYPES, InvDynConfig, build_invdyn
from .normalization import PLAN_SCALES, Normalizer
from .planner import DiffusionPlanner, PlannerConfig
from .robot import COMMAND_INTERFACES, RobotDescription, RobotMismatch
from .settings import check, setting

if TYPE_CHECKING:
    from diffusers.training_utils import EMAModel

MODEL_TYPES = INVDYN_TYPES + ("planner",)

Batch = dict[str, torch.Tensor]


@dataclass
class TrainConfig:
    """What to train on and how: the trainer's command line (each field is a ``--option`` of the same name)."""

    data: list[str] = setting([])
    """Demonstration files (NPZ episodes)."""
    bag: list[str] = setting([])
    """rosbag2 recordings (directories, .mcap or .db3) to train from."""
    bag_reading: BagReadConfig = field(default_factory=BagReadConfig)
    """Topics and joints of the bags, and how their messages are aligned into episodes."""
    output_dir: str = "outputs/train/enhanced_invdyn"
    """Where checkpoints are written."""
    model_type: str = setting("enhanced", choices=MODEL_TYPES)
    """Which model to train."""
    command_interface: str = setting("", choices=("", *COMMAND_INTERFACES))
    """What the data's actions command (position, velocity or effort) when the data does not say (bags,
    NPZ without a robot description; '': effort); data that says another is refused."""
    batch_size: int = setting(256, low=1)
    """Samples per optimizer step (over all processes under torchrun)."""
    lr: float = setting(3e-4, low=0.0)
    """Peak learning rate (AdamW, cosine decay after warmup)."""
    steps: int = setting(5000, low=1)
    """Optimizer steps in total."""
    probabilistic: bool = False
    """Enhanced model: Gaussian head trained by likelihood."""
    temperature: float = setting(0.1, low=0.0)
    """Default sampling temperature stored with a probabilistic model."""
    seq_length: int = setting(3, low=1)
    """States in the inverse dynamics history (sequence models)."""
    hidden_dim: int = setting(512, low=1)
    """Hidden width of the inverse dynamics MLP layers."""
    num_layers: int = setting(4, low=1)
    """Trunk depth of the enhanced model."""
    gru_hidden_dim: int = setting(256, low=1)
    """Hidden size of the GRU sequence encoder (seq and enhanced models)."""
    dropout: float = setting(0.1, low=0.0, high=0.99)
    """Dropout in the enhanced model's trunk."""
    horizon: int = setting(16, low=1)
    """Planner: number of future states planned."""
    n_obs_steps: int = setting(2, low=1)
    """Planner: number of recent states it is conditioned on."""
    plan_scale: str = setting("std", choices=PLAN_SCALES)
    """Planner: how its coordinates scale each step's state change: std (its standard deviation), range (its 99.5th
    percentile of magnitude) or symlog (std, then log-compressed beyond one); see the README on the two-way task."""
    val_fraction: float = setting(0.1, low=0.0, high=1.0)
    """Fraction of episodes held out for validation."""
    seed: int = 0
    """Seed for the split, initialization and batches."""
    device: str = "auto"
    """auto (CUDA when present), cpu, cuda or cuda:N."""
    resume: bool = False
    """Continue from <output_dir>/*_last.pth if it exists."""
    init_from: str = ""
    """Start from the weights of this checkpoint (e.g. a converted model); its architecture replaces the options."""
    weight_decay: float = setting(1e-4, low=0.0)
    """AdamW weight decay."""
    warmup_steps: int = setting(100, low=0)
    """Linear learning-rate warmup steps."""
    grad_clip: float = setting(1.0, low=0.0)
    """Clip the gradient norm to this value."""
    ema_decay: float = setting(0.0, low=0.0, high=0.99999)
    """Largest decay of the exponential moving average of the weights that validation and the checkpoints use,
    warmed up as 1 - (1 + step)^-0.75 (Diffusion Policy's); 0: the last weights as they are."""
    eval_every: int = setting(500, low=1)
    """Steps between validations."""
    checkpoint_every: int = setting(500, low=1)
    """Steps between resumable *_last.pth checkpoints."""
    progress: bool = True
    """Show a progress bar."""
    bf16: bool = False
    """bfloat16 autocast on CUDA (ignored on the CPU)."""

    def __post_init__(self) -> None:
        check(self)
        if not self.data and not self.bag:
            raise ValueError("give demonstrations with --data (NPZ) and/or --bag (rosbag2)")

    @property
    def stem(self) -> str:
        """File name stem of the checkpoints, as the seed names them."""
        return "planner" if self.model_type == "planner" else f"invdyn_{self.model_type}"

    @property
    def kind(self) -> str:
        """The checkpoint kind of the model: ``planner`` or ``invdyn``."""
        return "planner" if self.model_type == "planner" else "invdyn"


ARCHITECTURE_OPTIONS = {
    "invdyn": {"seq_length": "seq_length", "hidden_dim": "hidden_dim", "num_layers": "num_layers",
               "gru_hidden_dim": "gru_hidden_dim", "dropout": "dropout", "probabilistic": "use_probabilistic"},
    "planner": {"horizon": "horizon", "n_obs_steps": "n_obs_steps"},
}
"""Per checkpoint kind: the trainer options that set the model's architecture -> its config field."""


def architecture(config: TrainConfig) -> dict:
    return {option: getattr(config, option) for option in ARCHITECTURE_OPTIONS[config.kind]}


def with_architecture_of(config: TrainConfig, model_config: dict) -> TrainConfig:
    """``config`` with the architecture options a checkpoint's model was built with (fine-tuning)."""
    return replace(config, **{option: model_config[field] for option, field in ARCHITECTURE_OPTIONS[config.kind].items()
                              if field in model_config})


@dataclass
class TrainResult:
    final_path: Path
    """The checkpoint written at the end."""
    val_metric: float
    """Held-out metric at the end: action MSE (normalized units) or planner denoising loss."""
    samples_per_second: float
    """Training throughput of this run (samples through forward and backward per second)."""


def load_training_data(npz_paths: list[str], bag_paths: list[str] = (), bag_config: BagReadConfig | None = None,
                       verbose: bool = True) -> Episodes:
    """All demonstrations (NPZ files and rosbag2 recordings) as one set of episodes.

    They must share joints and control period.
    """
    sources, parts = list(npz_paths), [load_episodes(path) for path in npz_paths]
    if bag_paths:
        episodes, report = read_bag_episodes(list(bag_paths), bag_config or BagReadConfig())
        if verbose:
            print(report)
        sources.append(", ".join(bag_paths))
        parts.append(episodes)
    first = parts[0]
    for source, part in zip(sources[1:], parts[1:]):
        if differences := part.robot.differences(first.robot):
            raise RobotMismatch(f"{source}: the robot differs from {sources[0]}'s: {'; '.join(differences)}")
    offsets = np.cumsum([0] + [len(part.states) for part in parts[:-1]])
    return Episodes(
        states=np.concatenate([part.states for part in parts]),
        actions=np.concatenate([part.actions for part in parts]),
        goals=np.concatenate([part.goals for part in parts]),
        episode_ends=np.concatenate([part.episode_ends + offset for part, offset in zip(parts, offsets)]),
        dt=first.dt,
        joint_names=first.joint_names,
        robot=first.robot,
    )


def build_model(config: TrainConfig, episodes: Episodes) -> tuple[nn.Module, dict]:
    """The model to train and its config as plain values."""
    if config.model_type == "planner":
        planner_config = PlannerConfig(
            state_dim=episodes.state_dim,
            goal_dim=episodes.goal_dim,
            horizon=config.horizon,
            n_obs_steps=config.n_obs_steps,
        )
        return DiffusionPlanner(planner_config), planner_config.to_dict()
    invdyn_config = InvDynConfig(
        model_type=config.model_type,
        state_dim=episodes.state_dim,
        action_dim=episodes.action_dim,
        seq_length=config.seq_length,
        hidden_dim=config.hidden_dim,
        num_layers=config.num_layers,
        gru_hidden_dim=config.gru_hidden_dim,
        dropout=config.dropout,
        use_probabilistic=config.probabilistic,
    )
    return build_invdyn(invdyn_config), invdyn_config.to_dict()


def make_windows(config: TrainConfig, episodes: Episodes, normalizer: Normalizer, device: torch.device) -> Batch:
    """All training samples of ``episodes``, normalized, as tensors on ``device``."""
    if config.model_type == "planner":
        raw = {name: torch.from_numpy(array) for name, array in
               planner_windows(episodes, config.n_obs_steps, config.horizon).items()}
        current = raw["history"][:, -1]
        windows = {"history": normalizer.normalize_state(raw["history"]),
                   "goal": normalizer.normalize_goal_error(raw["goal"], current),
                   "future": normalizer.normalize_plan(raw["future"], current)}
    else:
        raw = {name: torch.from_numpy(array) for name, array in invdyn_windows(episodes, config.seq_length).items()}
        windows = {"history": normalizer.normalize_state(raw["history"]),
                   "next_state": normalizer.normalize_state(raw["next_state"]),
                   "action": normalizer.normalize_action(raw["action"], raw["history"][:, -1])}
    return {name: tensor.to(device) for name, tensor in windows.items()}


def planner_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    goal = batch["goal"] if batch["goal"].shape[-1] else None  # demonstrations without goals
    return model.compute_loss(batch["history"], goal, batch["future"])


def loss_function(model_type: str) -> Callable[[nn.Module, Batch], torch.Tensor]:
    if model_type == "planner":
        return planner_loss
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
                value = planner_loss(model, batch)
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


@dataclass
class Distributed:
    """This process's place in a torchrun job (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Only the main process logs, shows progress, validates and writes checkpoints."""
        return self.rank == 0


@contextmanager
def distributed_job(device_name: str) -> Iterator[tuple[Distributed, torch.device]]:
    """Join the torchrun job if there is one (NCCL on GPUs, one per local rank; gloo on CPU), and leave it.

    The process group is destroyed only after everything that used it (DistributedDataParallel
    holds it) has gone out of scope, and after a barrier: a rank that leaves while another
    still writes the checkpoint, or with a live DDP reducer, can hang the job at exit.
    """
    device = select_device(device_name)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        yield Distributed(), device
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield Distributed(dist.get_rank(), world_size), device
        dist.barrier()
    finally:
        dist.destroy_process_group()


class Objective(nn.Module):
    """The training loss as a module's forward, so DistributedDataParallel can wrap it."""

    def __init__(self, model: nn.Module, model_type: str) -> None:
        super().__init__()
        self.model = model
        self.loss = loss_function(model_type)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.loss(self.model, batch)


def gather_rng_states(job: Distributed) -> list[torch.Tensor]:
    """Every rank's CPU RNG state (dropout and diffusion noise), so a resume continues each stream."""
    state = torch.get_rng_state()
    if job.world_size == 1:
        return [state]
    states: list[torch.Tensor | None] = [None] * job.world_size
    dist.all_gather_object(states, state)
    return states


def restore(path: Path, kind: str, model: nn.Module, optimizer, scheduler, ema: EMAModel | None,
            job: Distributed) -> tuple[int, Normalizer, float]:
    """Load a ``*_last.pth`` written by this trainer; returns the step to continue from, the normalizer and
    the last validation metric."""
    payload = read_checkpoint(path, kind=kind)
    if "train_state" not in payload:
        raise CheckpointError(f"{path}: has no training state to resume from")
    state = payload["train_state"]
    if (ema is None) != (state.get("ema") is None):
        raise CheckpointError(f"{path}: was trained {'without' if ema else 'with'} --ema_decay; resume it as it was")
    model.load_state_dict(state.get("weights", payload["state_dict"]))
    if ema is not None:
        ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng_states = state["torch_rng"]
    torch.set_rng_state(rng_states[job.rank % len(rng_states)])
    val_metric = float(payload["metadata"].get("val_metric", float("nan")))
    return int(state["step"]), Normalizer.from_state_dict(payload["normalizer"]), val_metric


def moving_average(model: nn.Module, config: TrainConfig) -> EMAModel | None:
    """The weights' exponential moving average, if ``config`` asks for one."""
    if not config.ema_decay:
        return None
    from diffusers.training_utils import EMAModel  # a second of imports (diffusers' models) only when asked

    return EMAModel(model.parameters(), decay=config.ema_decay, use_ema_warmup=True, power=0.75, foreach=True)


@contextmanager
def averaged_weights(model: nn.Module, ema: EMAModel | None) -> Iterator[None]:
    """``model`` holds the averaged weights inside the block (buffers stay the trained ones), its own after."""
    if ema is None:
        yield
        return
    ema.store(model.parameters())
    ema.copy_to(model.parameters())
    try:
        yield
    finally:
        ema.restore(model.parameters())


def train(config: TrainConfig) -> TrainResult:
    """Train one model as ``config`` says; returns where it was written and how it did.

    Under torchrun every process runs this: each trains on its shard of every batch
    (``batch_size / world_size`` samples) with gradients averaged by DistributedDataParallel.
    """
    with distributed_job(config.device) as (job, device):
        return _train(config, job, device)


def _train(config: TrainConfig, job: Distributed, device: torch.device) -> TrainResult:
    if config.batch_size % job.world_size:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the {job.world_size} processes")
    use_bf16 = config.bf16 and device.type == "cuda"
    if config.bf16 and not use_bf16 and job.is_main:
        print("--bf16 applies to CUDA only: training in float32 on the CPU")
    torch.manual_seed(config.seed)  # the same initial weights in every process
    episodes = load_training_data(config.data, config.bag, config.bag_reading, verbose=job.is_main)
    init = read_checkpoint(config.init_from, kind=config.kind) if config.init_from else None
    if init is not None and "robot" in init["metadata"]:  # fine-tuning on the same robot: what the data lacks
        episodes.robot = episodes.robot.completed_by(RobotDescription.from_dict(init["metadata"]["robot"]))
    episodes.robot = episodes.robot.with_interface(config.command_interface)
    train_episodes, val_episodes = split_episodes(episodes, config.val_fraction, config.seed)
    if init is not None:
        config = with_architecture_of(config, init["config"])
        if job.is_main:
            print(f"fine-tuning {config.init_from}: its architecture {architecture(config)} replaces the options")
    kind = config.kind
    model, model_config = build_model(config, train_episodes)
    normalizer = Normalizer.fit(train_episodes)
    if kind == "planner":
        normalizer = normalizer.with_plan_statistics(planner_windows(train_episodes, config.n_obs_steps, config.horizon),
                                                     train_episodes.robot.goal_state_indices(), config.plan_scale)
    if init is not None:
        # Fine-tuning keeps the normalizer the weights were trained with.
        check_config(config.init_from, init["config"], **model_config)
        model.load_state_dict(init["state_dict"])
        normalizer = Normalizer.from_state_dict(init["normalizer"])
    model.to(device).train()
    torch.manual_seed(config.seed + job.rank)  # but each its own dropout and noise

    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, min(config.warmup_steps, config.steps // 10), config.steps)
    ema = moving_average(model, config)
    output_dir = Path(config.output_dir)
    last_path, final_path = output_dir / f"{config.stem}_last.pth", output_dir / f"{config.stem}_final.pth"
    remove_stale_temporaries(output_dir)  # of saves a killed run left behind
    step, val_metric = 0, float("nan")
    if config.resume and last_path.exists():
        step, normalizer, val_metric = restore(last_path, kind, model, optimizer, scheduler, ema, job)
        if step >= config.steps and final_path.exists():  # a finished run: its files stay as they are
            if job.is_main:
                print(f"{last_path} finished at step {step}/{config.steps} already; nothing to do "
                      f"({final_path}: val {val_metric:.4f})")
            return TrainResult(final_path, val_metric, 0.0)
        if job.is_main:
            print(f"resuming {last_path} at step {step}/{config.steps}")

    train_data = make_windows(config, train_episodes, normalizer, device)
    val_data = make_windows(config, val_episodes, normalizer, device)
    if kind == "invdyn" and step == 0:
        model.calibrate(train_data["history"], train_data["next_state"])
    stream = BatchStream(len(train_data["history"]), config.batch_size // job.world_size, config.seed, job.rank,
                         job.world_size)
    objective = Objective(model, config.model_type)
    if job.world_size > 1:
        objective = DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None)
    metadata = {"joint_names": episodes.joint_names, "dt": episodes.dt, "temperature": config.temperature,
                "robot": episodes.robot.to_dict(),
                # The states the model has seen: a controller without declared joint ranges accepts these.
                "state_low": episodes.states.min(axis=0).tolist(), "state_high": episodes.states.max(axis=0).tolist()}

    def save(path: Path, val_metric: float, with_train_state: bool) -> None:
        rng_states = gather_rng_states(job) if with_train_state else []  # a collective: every rank calls it
        if not job.is_main:
            return
        train_state = None
        if with_train_state:
            train_state = {"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                           "torch_rng": rng_states}
            if ema is not None:  # the checkpoint's weights are the average; training continues from its own
                train_state |= {"ema": ema.state_dict(),
                                "weights": {name: value.clone() for name, value in model.state_dict().items()}}
        with averaged_weights(model, ema):
            save_checkpoint(path, kind=kind, config=model_config, state_dict=model.state_dict(), normalizer=normalizer,
                            metadata={**metadata, "steps": step, "val_metric": val_metric,
                                      "ema_decay": config.ema_decay},
                            train_state=train_state)

    start_step, started = step, time.perf_counter()
    progress = tqdm(total=config.steps, initial=step, desc=config.stem, dynamic_ncols=True,
                    disable=not (config.progress and job.is_main))
    while step < config.steps:
        batch = {name: tensor[stream.indices(step).to(device)] for name, tensor in train_data.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = objective(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.step(model.parameters())
        step += 1
        progress.update(1)
        if job.is_main and (step % config.eval_every == 0 or step == config.steps):
            with averaged_weights(model, ema):
                val_metric = validate(model, config.model_type, val_data)
            tqdm.write(f"{config.stem} step {step}/{config.steps}: train loss {loss.item():.4f}, val {val_metric:.4f}")
        if step % config.checkpoint_every == 0 or step == config.steps:
            save(last_path, val_metric, with_train_state=True)
    progress.close()
    samples_per_second = (step - start_step) * config.batch_size / max(time.perf_counter() - started, 1e-9)
    save(final_path, val_metric, with_train_state=False)
    if job.is_main:
        print(f"wrote {final_path}: val {'mse' if kind == 'invdyn' else 'loss'} {val_metric:.4f}, "
              f"{samples_per_second:.0f} samples/s with {job.world_size} process(es)")
    return TrainResult(final_path, val_metric, samples_per_second)
