"""``convert_to_enhanced_invdyn``: start an enhanced model from a trained MLP or GRU model.

Weights are copied where the two architectures have a part with the same role:

- GRU (``seq``): its GRU becomes the enhanced model's sequence encoder.
- MLP: its first layer reads [s_t, s_{t+1}], which are the first 2·S inputs of the enhanced
  trunk's first layer, so those columns and the bias are copied; its second hidden layer
  becomes the trunk's second layer and its output layer the mean head.

Everything else (LayerNorms, the remaining trunk layers and columns, a Gaussian head) keeps
its fresh initialization. The result is an ordinary enhanced checkpoint that the trainer
fine-tunes with ``--init_from``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checkpoint import check_config, read_checkpoint, save_checkpoint
from .invdyn import EnhancedInvDynamic, InvDynConfig
from .normalization import Normalizer

# (target parameter, number of leading input columns or None for the whole tensor, source parameter)
_MLP_MAP = [
    ("trunk.0.linear.weight", "2S", "net.0.weight"),
    ("trunk.0.linear.bias", None, "net.0.bias"),
    ("trunk.1.linear.weight", None, "net.2.weight"),
    ("trunk.1.linear.bias", None, "net.2.bias"),
    ("mean_head.weight", None, "net.4.weight"),
    ("mean_head.bias", None, "net.4.bias"),
]
_GRU_PARAMS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
_SEQ_MAP = [(f"encoder.{name}", None, f"gru.{name}") for name in _GRU_PARAMS]


@dataclass
class ConversionReport:
    copied: list[str] = field(default_factory=list)
    """Target parameters (or column blocks of them) copied from the source model."""
    skipped: list[str] = field(default_factory=list)
    """Mapped parameters whose shapes did not fit, with both shapes."""
    initialized: list[str] = field(default_factory=list)
    """Target parameters left at their fresh initialization."""

    def __str__(self) -> str:
        return (f"copied {len(self.copied)}: {', '.join(self.copied) or '-'}\n"
                f"skipped {len(self.skipped)}: {', '.join(self.skipped) or '-'}\n"
                f"freshly initialized {len(self.initialized)}: {', '.join(self.initialized) or '-'}")


def _copy_mapped(target: dict[str, torch.Tensor], source: dict[str, torch.Tensor], mapping: list,
                 state_dim: int) -> ConversionReport:
    report, fully_copied = ConversionReport(), set()
    for target_name, columns, source_name in mapping:
        destination = target[target_name] if columns is None else target[target_name][:, : 2 * state_dim]
        label = target_name if columns is None else f"{target_name}[:, :{2 * state_dim}]"
        value = source[source_name]
        if value.shape != destination.shape:
            report.skipped.append(f"{label} {tuple(destination.shape)} <- {source_name} {tuple(value.shape)}")
            continue
        destination.copy_(value)
        report.copied.append(f"{label} <- {source_name}")
        if columns is None:
            fully_copied.add(target_name)
    report.initialized = [name for name in target if name not in fully_copied]
    return report


def convert_to_enhanced_invdyn(
    model_path: str | Path,
    state_dim: int,
    action_dim: int,
    use_probabilistic: bool = False,
    output_path: str | Path | None = None,
) -> EnhancedInvDynamic:
    """Build an enhanced model from an MLP or GRU checkpoint; save it if ``output_path`` is given.

    The returned model carries the source's ``normalizer`` and a ``conversion_report``.
    """
    payload = read_checkpoint(model_path, kind="invdyn")
    source_config = payload["config"]
    check_config(model_path, source_config, state_dim=state_dim, action_dim=action_dim)
    source_type = source_config["model_type"]
    if source_type not in ("mlp", "seq"):
        raise ValueError(f"{model_path}: can convert an 'mlp' or 'seq' model, not {source_type!r}")
    config = InvDynConfig(
        model_type="enhanced",
        state_dim=state_dim,
        action_dim=action_dim,
        seq_length=source_config["seq_length"],
        hidden_dim=source_config["hidden_dim"],
        gru_hidden_dim=source_config["gru_hidden_dim"],
        use_probabilistic=use_probabilistic,
    )
    model = EnhancedInvDynamic(config)
    target = model.state_dict()
    with torch.no_grad():
        report = _copy_mapped(target, payload["state_dict"], _MLP_MAP if source_type == "mlp" else _SEQ_MAP,
                              state_dim)
    model.load_state_dict(target)
    model.normalizer = Normalizer.from_state_dict(payload["normalizer"])
    model.conversion_report = report
    if output_path is not None:
        save_checkpoint(
            output_path, kind="invdyn", config=config.to_dict(), state_dict=model.state_dict(),
            normalizer=model.normalizer,
            metadata={**payload.get("metadata", {}), "converted_from": str(model_path)},
        )
    return model.eval()
