"""Inverse dynamics models: (recent states, next state) -> the action that gets there.

All three models share one call signature, so the trainer, the policy and the comparison treat
them alike::

    action = model(history, next_state, temperature=0.0)   # history (B, L, S), next_state (B, S)
    loss = model.loss(history, next_state, action)

Inputs and outputs are in normalized units (see ``normalization.Normalizer``). ``history`` ends
with the current state s_t; models that need fewer states use only the newest ones.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .normalization import Normalizer

INVDYN_TYPES = ("mlp", "seq", "enhanced")


@dataclass
class InvDynConfig:
    """Architecture of an inverse dynamics model; stored in every checkpoint as plain values."""

    model_type: str = "enhanced"
    """Which model: ``mlp`` (Decision Diffuser baseline), ``seq`` (GRU) or ``enhanced``."""
    state_dim: int = 6
    """Size of one state vector S."""
    action_dim: int = 3
    """Size of one action vector A."""
    seq_length: int = 3
    """Number of recent states (ending with the current one) the sequence models read."""
    hidden_dim: int = 512
    """Width of the MLP layers (every trunk layer of the enhanced model)."""
    num_layers: int = 4
    """Number of hidden layers in the enhanced model's trunk (the MLP baseline always has 2)."""
    gru_hidden_dim: int = 256
    """Hidden size of the GRU sequence encoder (seq and enhanced)."""
    dropout: float = 0.1
    """Dropout after each trunk layer of the enhanced model (training only)."""
    use_probabilistic: bool = False
    """Enhanced only: Gaussian head (mean and log-std) trained by likelihood instead of MSE."""
    log_std_min: float = -5.0
    """Lower clamp of the Gaussian head's log-std."""
    log_std_max: float = 2.0
    """Upper clamp of the Gaussian head's log-std."""
    final_init_scale: float = 1e-2
    """Enhanced only: init scale of the output layers, so training starts near the mean action."""

    def __post_init__(self) -> None:
        if self.model_type not in INVDYN_TYPES:
            raise ValueError(f"model_type must be one of {INVDYN_TYPES}, got {self.model_type!r}")
        for name in ("state_dim", "action_dim", "seq_length", "hidden_dim", "num_layers", "gru_hidden_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.use_probabilistic and self.model_type != "enhanced":
            raise ValueError("use_probabilistic is only available for model_type 'enhanced'")
        if not self.log_std_min < self.log_std_max:
            raise ValueError("log_std_min must be below log_std_max")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> InvDynConfig:
        return cls(**values)


class InvDynamic(nn.Module):
    """Base class: the shared call signature and the deterministic MSE loss."""

    def __init__(self, config: InvDynConfig) -> None:
        super().__init__()
        self.config = config
        self.normalizer: Normalizer | None = None
        """The normalizer the model was trained with; set by the checkpoint loaders."""

    def forward(self, history: torch.Tensor, next_state: torch.Tensor, temperature: float = 0.0) -> torch.Tensor:
        raise NotImplementedError

    def calibrate(self, history: torch.Tensor, next_state: torch.Tensor) -> None:
        """Fit data-dependent input scales on training samples before training (none by default)."""

    def loss(self, history: torch.Tensor, next_state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self(history, next_state), action)

    def forward_samples(self, history: torch.Tensor, next_states: torch.Tensor, temperature: float = 0.0,
                        noise: torch.Tensor | None = None) -> torch.Tensor:
        """Actions for N candidate next states that share one history: (B, L, S), (B, N, S) -> (B, N, A).

        The same as ``forward`` on every (history, next state) pair; the sequence models override
        it to encode the shared history once, which is most of a control tick's work. ``noise``
        (B, N, A): the standard normal draws of a probabilistic head (None: fresh ones), so that a
        sampled action is a function of the inputs (an ONNX export and its parity check).
        """
        batch, num_samples, state_dim = next_states.shape
        histories = history.unsqueeze(1).expand(-1, num_samples, -1, -1).reshape(batch * num_samples, -1, state_dim)
        actions = self(histories, next_states.reshape(batch * num_samples, state_dim), temperature)
        return actions.reshape(batch, num_samples, -1)


def encode_shared_history(gru: nn.GRU, history: torch.Tensor, next_states: torch.Tensor) -> torch.Tensor:
    """The GRU's last hidden state over [history, next state] for N next states per history: (B*N, G).

    The history is run once per row and only the last step once per sample: a GRU is sequential,
    so this equals running every full sequence. (One sample: one call over the whole sequence.)
    """
    batch, num_samples, state_dim = next_states.shape
    if num_samples == 1:
        return gru(torch.cat([history, next_states], dim=1))[1][-1]
    _, hidden = gru(history)
    _, hidden = gru(next_states.reshape(batch * num_samples, 1, state_dim), hidden.repeat_interleave(num_samples, 1))
    return hidden[-1]


class MLPInvDynamic(InvDynamic):
    """Decision Diffuser's inverse dynamics: an MLP (ReLU) over [s_t, s_{t+1}]."""

    def __init__(self, config: InvDynConfig) -> None:
        super().__init__(config)
        s, h = config.state_dim, config.hidden_dim
        self.net = nn.Sequential(
            nn.Linear(2 * s, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, config.action_dim)
        )

    def forward(self, history: torch.Tensor, next_state: torch.Tensor, temperature: float = 0.0) -> torch.Tensor:
        return self.net(torch.cat([history[:, -1], next_state], dim=-1))


class SeqInvDynamic(InvDynamic):
    """A GRU over [s_{t-L+1}, ..., s_t, s_{t+1}] and an MLP head on its last hidden state."""

    def __init__(self, config: InvDynConfig) -> None:
        super().__init__(config)
        g, h = config.gru_hidden_dim, config.hidden_dim
        self.gru = nn.GRU(config.state_dim, g, batch_first=True)
        self.head = nn.Sequential(nn.Linear(g, h), nn.ReLU(), nn.Linear(h, config.action_dim))

    def forward(self, history: torch.Tensor, next_state: torch.Tensor, temperature: float = 0.0) -> torch.Tensor:
        return self.forward_samples(history, next_state[:, None], temperature)[:, 0]

    def forward_samples(self, history: torch.Tensor, next_states: torch.Tensor, temperature: float = 0.0,
                        noise: torch.Tensor | None = None) -> torch.Tensor:
        hidden = encode_shared_history(self.gru, history[:, -self.config.seq_length :], next_states)
        return self.head(hidden).reshape(*next_states.shape[:2], -1)


def fan_in_uniform_(linear: nn.Linear, scale: float = 1.0) -> nn.Linear:
    """Uniform init with variance ``scale / fan_in`` and zero bias (OGBench's default_init)."""
    bound = math.sqrt(3.0 * scale / linear.in_features)
    nn.init.uniform_(linear.weight, -bound, bound)
    nn.init.zeros_(linear.bias)
    return linear


class TrunkLayer(nn.Module):
    """Linear -> LayerNorm -> GELU -> Dropout, the OGBench MLP block."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        self.linear = fan_in_uniform_(nn.Linear(in_dim, out_dim))
        self.norm = nn.LayerNorm(out_dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Functional calls: at batch 1 the per-module call overhead is a large part of a control tick.
        x = F.linear(x, self.linear.weight, self.linear.bias)
        x = F.gelu(F.layer_norm(x, self.norm.normalized_shape, self.norm.weight, self.norm.bias, self.norm.eps))
        return F.dropout(x, self.dropout, self.training)


class EnhancedInvDynamic(InvDynamic):
    """GRU sequence encoder + OGBench-style trunk + deterministic or Gaussian head.

    The trunk reads ``[s_t, s_{t+1}, (s_{t+1} - s_t) / delta_scale, gru(history, s_{t+1})]``: the
    raw pair keeps the MLP baseline's information (and lets ``convert_to_enhanced_invdyn`` reuse
    its first layer); the one-step difference is what inverse dynamics mostly depends on (the
    acceleration), but it is a hundredth of a state's spread at 100 Hz, so ``calibrate`` scales it
    to unit spread; the GRU adds the temporal context that smooths actions.

    With ``use_probabilistic`` the head predicts a mean and a clamped log-std and ``forward``
    returns ``mean + temperature * std * eps``; temperature 0 returns exactly the mean.
    """

    def __init__(self, config: InvDynConfig) -> None:
        super().__init__(config)
        s, g, h = config.state_dim, config.gru_hidden_dim, config.hidden_dim
        self.encoder = nn.GRU(s, g, batch_first=True)
        self.register_buffer("delta_scale", torch.ones(s))
        widths = [3 * s + g] + [h] * config.num_layers
        self.trunk = nn.Sequential(*[TrunkLayer(i, o, config.dropout) for i, o in zip(widths[:-1], widths[1:])])
        self.mean_head = fan_in_uniform_(nn.Linear(h, config.action_dim), config.final_init_scale)
        self.log_std_head = (
            fan_in_uniform_(nn.Linear(h, config.action_dim), config.final_init_scale)
            if config.use_probabilistic
            else None
        )

    def calibrate(self, history: torch.Tensor, next_state: torch.Tensor) -> None:
        self.delta_scale.copy_((next_state - history[:, -1]).std(dim=0).clamp_min(1e-6))

    def features(self, current: torch.Tensor, next_state: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Trunk output for s_t, s_{t+1} and the GRU's last hidden state over the sequence (rows alike)."""
        delta = (next_state - current) / self.delta_scale
        return self.trunk(torch.cat([current, next_state, delta, hidden], dim=-1))

    def distribution(self, history: torch.Tensor, next_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mean and clamped log-std of the action (log-std is None for the deterministic head)."""
        return self._heads(self._pair_features(history, next_state))

    def _heads(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        mean = self.mean_head(features)
        if self.log_std_head is None:
            return mean, None
        log_std = self.log_std_head(features).clamp(self.config.log_std_min, self.config.log_std_max)
        return mean, log_std

    def _pair_features(self, history: torch.Tensor, next_state: torch.Tensor) -> torch.Tensor:
        hidden = encode_shared_history(self.encoder, history[:, -self.config.seq_length :], next_state[:, None])
        return self.features(history[:, -1], next_state, hidden)

    def _sample(self, features: torch.Tensor, temperature: float | torch.Tensor,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        mean, log_std = self._heads(features)
        if log_std is None:
            return mean
        if noise is None:
            if temperature == 0.0:
                return mean
            noise = torch.randn_like(mean)
        # Given noise (an export traces temperature as an input): at temperature 0 this is still exactly the mean.
        return mean + temperature * log_std.exp() * noise

    def forward(self, history: torch.Tensor, next_state: torch.Tensor, temperature: float = 0.0) -> torch.Tensor:
        return self._sample(self._pair_features(history, next_state), temperature)

    def forward_samples(self, history: torch.Tensor, next_states: torch.Tensor, temperature: float = 0.0,
                        noise: torch.Tensor | None = None) -> torch.Tensor:
        batch, num_samples, state_dim = next_states.shape
        hidden = encode_shared_history(self.encoder, history[:, -self.config.seq_length :], next_states)
        current = history[:, -1:].expand(-1, num_samples, -1).reshape(batch * num_samples, state_dim)
        features = self.features(current, next_states.reshape(batch * num_samples, state_dim), hidden)
        flat_noise = None if noise is None else noise.reshape(batch * num_samples, -1)
        return self._sample(features, temperature, flat_noise).reshape(batch, num_samples, -1)

    def loss(self, history: torch.Tensor, next_state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        mean, log_std = self.distribution(history, next_state)
        if log_std is None:
            return F.mse_loss(mean, action)
        return F.gaussian_nll_loss(mean, action, (2.0 * log_std).exp(), full=True)


_MODEL_CLASSES: dict[str, type[InvDynamic]] = {
    "mlp": MLPInvDynamic,
    "seq": SeqInvDynamic,
    "enhanced": EnhancedInvDynamic,
}


def build_invdyn(config: InvDynConfig) -> InvDynamic:
    """The model named by ``config.model_type``."""
    return _MODEL_CLASSES[config.model_type](config)
