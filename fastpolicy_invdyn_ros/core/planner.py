"""Diffusion state planner: a 1-D temporal U-Net that denoises the next ``horizon`` states.

The network follows Diffuser / Diffusion Policy: residual Conv1d blocks (GroupNorm, Mish) over
time, one down/up-sampling per extra U-Net level, and FiLM (per-channel scale and bias) from a
conditioning vector = timestep embedding + encoded (flattened state history, goal).
Training is DDPM (``compute_loss``); sampling is few-step DDIM by default, full DDPM on request,
and can warm start from the previous plan. Every tensor the planner sees is already normalized.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler
from torch import Tensor, nn

PREDICTION_TYPES = ("epsilon", "sample")
SAMPLERS = ("ddim", "ddpm")


@dataclass
class PlannerConfig:
    """Shape, network and diffusion settings of a ``DiffusionPlanner``."""

    state_dim: int
    """S: size of one (normalized) state, joint positions then velocities."""
    goal_dim: int = 0
    """G: size of the goal vector; 0 means the planner is conditioned on the history only."""
    horizon: int = 16
    """H: number of future states s_{t+1..t+H} in one plan; divisible by 2**(len(down_dims) - 1)."""
    n_obs_steps: int = 2
    """Number of past states (ending with the current one) the plan is conditioned on."""
    down_dims: tuple[int, ...] = (32, 64)
    """U-Net channel widths, one per level; time is halved between consecutive levels.
    (64, 128) plans a little better but doubles CPU latency (~16 ms for 8 samples x 4 steps)."""
    blocks_per_level: int = 1
    """Conditional residual blocks per U-Net level (and in the middle). Diffuser and Diffusion
    Policy use 2; on a CPU the latency is per-op overhead, so 1 roughly halves it."""
    kernel_size: int = 5
    """Temporal kernel size of the residual convolutions (odd, so 'same' padding is exact)."""
    n_groups: int = 8
    """GroupNorm groups; every entry of ``down_dims`` must be divisible by it."""
    cond_dim: int = 128
    """Width of the encoded (history, goal) vector fed to every FiLM layer."""
    timestep_embed_dim: int = 64
    """Width of the diffusion timestep embedding fed to every FiLM layer."""
    num_train_timesteps: int = 100
    """T: length of the DDPM noise schedule used in training (and by the 'ddpm' sampler)."""
    beta_schedule: str = "squaredcos_cap_v2"
    """diffusers beta schedule; 'squaredcos_cap_v2' is the cosine schedule."""
    prediction_type: str = "sample"
    """What the network predicts: 'sample' (the clean plan x0) or 'epsilon' (the noise).
    'sample' measured better with few DDIM steps on low-dimensional state trajectories."""
    num_inference_steps: int = 4
    """Default DDIM steps for a cold start; a divisor of T keeps DDIM's step arithmetic exact."""
    warm_start_strength: float = 0.5
    """Fraction of the noise schedule a warm start re-enters: the shifted previous plan is
    noised to timestep ~strength*T and denoised with the last round(strength*N) of the N steps."""

    def __post_init__(self) -> None:
        self.down_dims = tuple(int(d) for d in self.down_dims)
        positive = ("state_dim", "horizon", "n_obs_steps", "blocks_per_level", "kernel_size", "n_groups", "cond_dim",
                    "timestep_embed_dim", "num_train_timesteps", "num_inference_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.goal_dim < 0:
            raise ValueError(f"goal_dim must be >= 0, got {self.goal_dim}")
        if not self.down_dims or any(d % self.n_groups for d in self.down_dims):
            raise ValueError(f"down_dims {self.down_dims} must be non-empty multiples of n_groups={self.n_groups}")
        if self.horizon % 2 ** (len(self.down_dims) - 1):
            raise ValueError(f"horizon {self.horizon} must be divisible by 2**{len(self.down_dims) - 1} "
                             f"(one halving per extra U-Net level)")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        if self.timestep_embed_dim % 2:
            raise ValueError(f"timestep_embed_dim must be even (sin and cos halves), got {self.timestep_embed_dim}")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")
        if self.beta_schedule not in ("linear", "scaled_linear", "squaredcos_cap_v2"):
            raise ValueError(f"unsupported beta_schedule {self.beta_schedule!r}")
        if self.num_inference_steps > self.num_train_timesteps:
            raise ValueError(f"num_inference_steps {self.num_inference_steps} > num_train_timesteps "
                             f"{self.num_train_timesteps}")
        if not 0.0 < self.warm_start_strength <= 1.0:
            raise ValueError(f"warm_start_strength must be in (0, 1], got {self.warm_start_strength}")

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values only (lists, not tuples), loadable with ``torch.load(weights_only=True)``."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PlannerConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown PlannerConfig fields {sorted(unknown)}")
        return cls(**values)


def shift_plan(plan: Tensor, steps: int) -> Tensor:
    """Drop the first ``steps`` states of ``plan`` (..., H, S) and repeat the last one to keep H.

    A plan made at time t holds s_{t+1..t+H}; ``steps`` control periods later its still-future
    part starts at index ``steps``, which is what a warm start should begin from.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    horizon = plan.shape[-2]
    index = torch.arange(steps, steps + horizon, device=plan.device).clamp_max(horizon - 1)
    return plan.index_select(-2, index)


class TimestepEmbedding(nn.Module):
    """Sinusoidal embedding of the integer diffusion timestep, then a small MLP."""

    def __init__(self, num_timesteps: int, dim: int):
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half) / (half - 1 if half > 1 else 1))
        angles = torch.arange(num_timesteps)[:, None] * freqs[None, :]
        # Timesteps are integers in [0, T), so the sinusoids are a lookup table, not per-call math.
        self.register_buffer("table", torch.cat([angles.sin(), angles.cos()], dim=-1), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.Mish(), nn.Linear(4 * dim, dim))

    def forward(self, timestep: Tensor) -> Tensor:
        return self.mlp(self.table[timestep])


class ConditionEncoder(nn.Module):
    """MLP over the flattened state history concatenated with the goal."""

    def __init__(self, config: PlannerConfig):
        super().__init__()
        in_dim = config.n_obs_steps * config.state_dim + config.goal_dim
        self.mlp = nn.Sequential(nn.Linear(in_dim, config.cond_dim), nn.Mish(), nn.Linear(config.cond_dim, config.cond_dim))

    def forward(self, history: Tensor, goal: Tensor | None) -> Tensor:
        x = history.flatten(1)
        if goal is not None:
            x = torch.cat([x, goal], dim=-1)
        return self.mlp(x)


class Conv1dBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish, length preserving."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n_groups: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, out_channels),
            nn.Mish(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class ConditionalResidualBlock1D(nn.Module):
    """Two conv blocks with FiLM in between: out = conv2(scale * conv1(x) + bias) + residual(x).

    ``film_cond`` arrives already passed through Mish (shared by all blocks, so the U-Net applies
    it once), which makes ``film`` the usual Mish -> Linear FiLM generator.
    """

    def __init__(self, in_channels: int, out_channels: int, film_dim: int, kernel_size: int, n_groups: int):
        super().__init__()
        self.conv1 = Conv1dBlock(in_channels, out_channels, kernel_size, n_groups)
        self.conv2 = Conv1dBlock(out_channels, out_channels, kernel_size, n_groups)
        self.film = nn.Linear(film_dim, 2 * out_channels)
        self.residual = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor, film_cond: Tensor) -> Tensor:
        scale, bias = self.film(film_cond).unsqueeze(-1).chunk(2, dim=1)
        return self.conv2(scale * self.conv1(x) + bias) + self.residual(x)


class ResidualStack(nn.Module):
    """The ``blocks_per_level`` conditional residual blocks of one U-Net level."""

    def __init__(self, in_channels: int, out_channels: int, film_dim: int, config: PlannerConfig):
        super().__init__()
        k, g = config.kernel_size, config.n_groups
        self.blocks = nn.ModuleList(
            ConditionalResidualBlock1D(in_channels if i == 0 else out_channels, out_channels, film_dim, k, g)
            for i in range(config.blocks_per_level)
        )

    def forward(self, x: Tensor, film_cond: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x, film_cond)
        return x


class TemporalUNet1D(nn.Module):
    """Denoiser: (noisy plan (N, H, S), timestep, encoded condition (N, cond_dim)) -> (N, H, S).

    Level i runs at length H / 2**i with down_dims[i] channels. Going down, a stride-2 conv halves
    time before each deeper level; going up, a transposed conv doubles it and the result is
    concatenated with the down path's output of the same length (the skip) before the residual stack.
    """

    def __init__(self, config: PlannerConfig):
        super().__init__()
        film_dim = config.timestep_embed_dim + config.cond_dim
        dims = config.down_dims
        self.timestep_embedding = TimestepEmbedding(config.num_train_timesteps, config.timestep_embed_dim)
        self.down = nn.ModuleList(
            ResidualStack(c_in, c_out, film_dim, config) for c_in, c_out in zip((config.state_dim, *dims[:-1]), dims)
        )
        self.downsample = nn.ModuleList(nn.Conv1d(c, c, 3, stride=2, padding=1) for c in dims[:-1])
        self.mid = ResidualStack(dims[-1], dims[-1], film_dim, config)
        self.upsample = nn.ModuleList(nn.ConvTranspose1d(c, c, 4, stride=2, padding=1) for c in dims[1:])
        self.up = nn.ModuleList(
            ResidualStack(c_high + c_low, c_low, film_dim, config) for c_low, c_high in zip(dims[:-1], dims[1:])
        )
        self.final = nn.Sequential(
            Conv1dBlock(dims[0], dims[0], config.kernel_size, config.n_groups),
            nn.Conv1d(dims[0], config.state_dim, 1),
        )

    def forward(self, x: Tensor, timestep: Tensor, cond: Tensor) -> Tensor:
        """``timestep`` is (N,) or a 0-d tensor shared by the whole batch."""
        t_emb = self.timestep_embedding(timestep).expand(cond.shape[0], -1)
        film_cond = F.mish(torch.cat([t_emb, cond], dim=-1))
        h = self.down[0](x.transpose(1, 2), film_cond)  # convolve over time: (N, S, H)
        skips = [h]
        for downsample, level in zip(self.downsample, self.down[1:]):
            h = level(downsample(h), film_cond)
            skips.append(h)
        h = self.mid(h, film_cond)
        for i in reversed(range(len(self.up))):
            h = self.up[i](torch.cat([self.upsample[i](h), skips[i]], dim=1), film_cond)
        return self.final(h).transpose(1, 2)


Array = TypeVar("Array", Tensor, np.ndarray)


@dataclass(frozen=True)
class DdimStep:
    """One step of diffusers' ``DDIMScheduler.step`` as ``DiffusionPlanner.sample`` runs it (eta 0, no clipping or
    thresholding), its scalars taken from the scheduler: the same float32 operations in the same order, on
    tensors or NumPy arrays alike (``test_planner`` checks it equal to the scheduler's step)."""

    timestep: int
    sqrt_alpha: float
    """alpha_prod_t ** 0.5"""
    sqrt_beta: float
    """(1 - alpha_prod_t) ** 0.5"""
    sqrt_alpha_prev: float
    """alpha_prod_t_prev ** 0.5 (the previous timestep's; 1 after the last step)"""
    direction: float
    """(1 - alpha_prod_t_prev) ** 0.5, the weight of the predicted noise"""
    prediction_type: str

    def __call__(self, model_output: Array, sample: Array) -> tuple[Array, Array]:
        """(the previous sample, the predicted clean sample x0) from the network's output at ``sample``."""
        if self.prediction_type == "sample":
            original = model_output
            epsilon = (sample - self.sqrt_alpha * original) / self.sqrt_beta
        else:
            original = (sample - self.sqrt_beta * model_output) / self.sqrt_alpha
            epsilon = model_output
        return self.sqrt_alpha_prev * original + self.direction * epsilon, original


@dataclass(frozen=True)
class DdimSchedule:
    """The DDIM steps of one plan and, for a warm start, the forward noising to its first timestep
    (``DDIMScheduler.add_noise``: sqrt(alpha_prod_t) * prior + sqrt(1 - alpha_prod_t) * noise)."""

    steps: tuple[DdimStep, ...]
    noise_scales: tuple[float, float]
    """(sqrt(alpha_prod_t), sqrt(1 - alpha_prod_t)) of the first step's timestep."""

    @classmethod
    def of(cls, scheduler: DDIMScheduler, timesteps: Sequence[int]) -> DdimSchedule:
        """The steps over ``timesteps`` (a tail of the scheduler's, whose ``set_timesteps`` is done)."""
        alphas, stride = scheduler.alphas_cumprod, scheduler.config.num_train_timesteps // scheduler.num_inference_steps
        steps = []
        for t in timesteps:
            alpha = alphas[t]
            alpha_prev = alphas[t - stride] if t - stride >= 0 else scheduler.final_alpha_cumprod
            steps.append(DdimStep(int(t), float(alpha ** 0.5), float((1 - alpha) ** 0.5), float(alpha_prev ** 0.5),
                                  float((1 - alpha_prev) ** 0.5), scheduler.config.prediction_type))
        first = alphas[timesteps[0]]
        return cls(tuple(steps), (float(first ** 0.5), float((1 - first) ** 0.5)))

    def add_noise(self, prior: Array, noise: Array) -> Array:
        return self.noise_scales[0] * prior + self.noise_scales[1] * noise


class PlannerNetworks(Protocol):
    """The planner's two networks as ``DiffusionPlanner.sample`` calls them: PyTorch's (the planner itself) or
    an export of them in another runtime (``runtime``)."""

    def encode_condition(self, history: Tensor, goal: Tensor | None) -> Tensor:
        """(B, n_obs_steps, S) normalized history and (B, G) goal or None -> (B, cond_dim)."""

    def denoise(self, x: Tensor, timestep: Tensor, cond: Tensor) -> Tensor:
        """(N, H, S) noisy plans, a 0-d timestep and (N, cond_dim) conditions -> (N, H, S)."""

    def denoise_ddim(self, noise: Tensor, cond: Tensor, schedule: DdimSchedule, prior: Tensor | None = None) -> Tensor:
        """(N, H, S) standard normal noise, or with ``prior`` (N, H, S) a warm start's previous plan noised to the first
        step (``schedule.add_noise``), through ``schedule``'s steps -> the last step's clean-plan estimate x0."""


class DiffusionPlanner(nn.Module):
    """Plans the next ``horizon`` normalized states given the recent states and a goal."""

    def __init__(self, config: PlannerConfig):
        super().__init__()
        self.config = config
        self.condition_encoder = ConditionEncoder(config)
        self.unet = TemporalUNet1D(config)
        scheduler_kwargs = dict(
            num_train_timesteps=config.num_train_timesteps,
            beta_schedule=config.beta_schedule,
            prediction_type=config.prediction_type,
            clip_sample=False,  # normalized states legitimately exceed [-1, 1]
        )
        self.train_scheduler = DDPMScheduler(**scheduler_kwargs)
        # 'trailing' makes an N-step schedule start at t = T - 1 (pure noise), not at T - T/N.
        self._schedulers = {
            "ddim": DDIMScheduler(**scheduler_kwargs, timestep_spacing="trailing"),
            "ddpm": DDPMScheduler(**scheduler_kwargs, timestep_spacing="trailing"),
        }
        self._ddim_schedules: dict[tuple[int, bool], DdimSchedule] = {}

    def _check_condition(self, history: Tensor, goal: Tensor | None) -> None:
        c = self.config
        if history.ndim != 3 or history.shape[1:] != (c.n_obs_steps, c.state_dim):
            raise ValueError(f"history must be (B, {c.n_obs_steps}, {c.state_dim}), got {tuple(history.shape)}")
        if c.goal_dim == 0:
            if goal is not None:
                raise ValueError("this planner has goal_dim=0 and takes no goal")
        elif goal is None or goal.shape != (history.shape[0], c.goal_dim):
            got = None if goal is None else tuple(goal.shape)
            raise ValueError(f"goal must be ({history.shape[0]}, {c.goal_dim}), got {got}")

    def compute_loss(self, history: Tensor, goal: Tensor | None, future: Tensor) -> Tensor:
        """DDPM loss: MSE between the network output and the noise or clean plan (per prediction_type).

        history (B, n_obs_steps, S), goal (B, G) or None, future (B, H, S) = s_{t+1..t+H}.
        """
        self._check_condition(history, goal)
        c = self.config
        if future.shape != (history.shape[0], c.horizon, c.state_dim):
            raise ValueError(f"future must be ({history.shape[0]}, {c.horizon}, {c.state_dim}), got {tuple(future.shape)}")
        noise = torch.randn_like(future)
        timesteps = torch.randint(0, c.num_train_timesteps, (future.shape[0],), device=future.device)
        noisy = self.train_scheduler.add_noise(future, noise, timesteps)
        prediction = self.unet(noisy, timesteps, self.condition_encoder(history, goal))
        target = noise if c.prediction_type == "epsilon" else future
        return F.mse_loss(prediction, target)

    def encode_condition(self, history: Tensor, goal: Tensor | None) -> Tensor:
        return self.condition_encoder(history, goal)

    def denoise(self, x: Tensor, timestep: Tensor, cond: Tensor) -> Tensor:
        return self.unet(x, timestep, cond)

    def denoise_ddim(self, noise: Tensor, cond: Tensor, schedule: DdimSchedule, prior: Tensor | None = None) -> Tensor:
        x = noise if prior is None else schedule.add_noise(prior, noise)
        timesteps = torch.tensor([step.timestep for step in schedule.steps], device=x.device)  # one copy per call
        for step, timestep in zip(schedule.steps, timesteps):
            x, original = step(self.unet(x, timestep, cond), x)
        return original

    def _ddim_schedule(self, num_inference_steps: int, warm: bool) -> DdimSchedule:
        """The DDIM steps of an N-step cold start, or of a warm start (its last round(strength * N)), made once."""
        key = (num_inference_steps, warm)
        if key not in self._ddim_schedules:
            scheduler, timesteps = self._schedule("ddim", num_inference_steps)
            self._ddim_schedules[key] = DdimSchedule.of(scheduler, self._warm_tail(timesteps) if warm else timesteps)
        return self._ddim_schedules[key]

    def _warm_tail(self, timesteps: list[int]) -> list[int]:
        """What a warm start runs of an N-step schedule: its last k = max(1, round(warm_start_strength * N))."""
        return timesteps[-max(1, round(self.config.warm_start_strength * len(timesteps))):]

    def _schedule(self, sampler: str, num_inference_steps: int) -> tuple[DDIMScheduler | DDPMScheduler, list[int]]:
        """The sampler's scheduler set to N steps (re-set only when N changes) and its timesteps."""
        scheduler = self._schedulers[sampler]
        if scheduler.num_inference_steps != num_inference_steps:
            scheduler.set_timesteps(num_inference_steps)
        return scheduler, scheduler.timesteps.tolist()

    @torch.inference_mode()
    def sample(
        self,
        history: Tensor,
        goal: Tensor | None = None,
        num_samples: int = 1,
        num_inference_steps: int | None = None,
        warm_start: Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: str = "ddim",
        networks: PlannerNetworks | None = None,
    ) -> Tensor:
        """Draw ``num_samples`` plans per condition, all B * num_samples in one network batch.

        history (B, n_obs_steps, S), goal (B, G) or None -> plans (B, num_samples, H, S).
        num_inference_steps: N, the length of the full schedule; None means config.num_inference_steps
            for 'ddim' and all T steps for 'ddpm' (the slow reference sampler).
        warm_start: a previous plan already shifted to start at s_{t+1} (see ``shift_plan``), (B, H, S)
            (shared by all samples) or (B, num_samples, H, S). It is noised with fresh Gaussian noise to
            timestep t_k (forward process q(x_t | x_0)), where t_k is the first of the last
            k = max(1, round(warm_start_strength * N)) timesteps of the N-step schedule, and then
            denoised through those k steps only. None: cold start from pure noise through all N steps.
        generator: seeds the initial (and, for 'ddpm', per-step) noise; must live on the model's device.
        networks: what runs the condition encoder and the denoiser (None: this planner's PyTorch modules).
        The result is the final step's clean-plan estimate x0. Not thread-safe (schedulers hold state).
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        c = self.config
        self._check_condition(history, goal)
        if num_inference_steps is None:
            num_inference_steps = c.num_inference_steps if sampler == "ddim" else c.num_train_timesteps
        if not 1 <= num_inference_steps <= c.num_train_timesteps:
            raise ValueError(f"num_inference_steps must be in [1, {c.num_train_timesteps}], got {num_inference_steps}")

        batch = history.shape[0]
        shape = (batch * num_samples, c.horizon, c.state_dim)
        # The condition is the same for all samples of one row: encode B rows, then repeat.
        networks = self if networks is None else networks
        cond = networks.encode_condition(history, goal)
        cond = cond.expand(num_samples, -1) if batch == 1 else cond.repeat_interleave(num_samples, dim=0)  # a view
        x = torch.randn(shape, generator=generator, device=history.device, dtype=history.dtype)
        prior = None if warm_start is None else self._expand_warm_start(warm_start, batch, num_samples).reshape(shape)
        if sampler == "ddim":  # DDIMScheduler.step's update with its scalars (DdimStep): in the networks' runtime
            schedule = self._ddim_schedule(num_inference_steps, warm=prior is not None)
            plans = networks.denoise_ddim(x, cond, schedule, prior)
            return plans.reshape(batch, num_samples, c.horizon, c.state_dim)

        scheduler, timesteps = self._schedule(sampler, num_inference_steps)
        if prior is not None:
            timesteps = self._warm_tail(timesteps)
            x = scheduler.add_noise(prior, x, torch.tensor([timesteps[0]]))
        timestep_tensors = torch.tensor(timesteps, device=x.device)  # one host-to-device copy per call
        for t, t_tensor in zip(timesteps, timestep_tensors):
            model_output = networks.denoise(x, t_tensor, cond)
            step = scheduler.step(model_output, t, x, generator=generator)
            x = step.prev_sample
        return step.pred_original_sample.reshape(batch, num_samples, c.horizon, c.state_dim)

    def _expand_warm_start(self, warm_start: Tensor, batch: int, num_samples: int) -> Tensor:
        c = self.config
        if warm_start.shape == (batch, c.horizon, c.state_dim):
            return warm_start.unsqueeze(1).expand(-1, num_samples, -1, -1)
        if warm_start.shape == (batch, num_samples, c.horizon, c.state_dim):
            return warm_start
        raise ValueError(f"warm_start must be ({batch}, {c.horizon}, {c.state_dim}) or "
                         f"({batch}, {num_samples}, {c.horizon}, {c.state_dim}), got {tuple(warm_start.shape)}")
