"""One-file checkpoints: format version, kind, plain config, weights, normalizer, and their checksum.

Files are read with ``torch.load(weights_only=True)``: only tensors and plain containers are
accepted, so a crafted pickle is refused instead of executed, and a refusal never suggests loading
it any other way. Each file carries the SHA-256 of everything else in it (``payload_digest``),
checked on every load, so a flipped bit in the weights is refused instead of driving the robot.
Writes go to a temporary file that is fsynced and renamed over the target
(``files.atomic_file``), so a crash mid-save leaves the previous file intact.
"""
from __future__ import annotations

import hashlib
import math
import pickle
from pathlib import Path
from typing import Any

import torch

from .errors import InputError
from .files import atomic_file
from .invdyn import InvDynamic, InvDynConfig, build_invdyn
from .normalization import Normalizer
from .planner import DiffusionPlanner, PlannerConfig
from .robot import RobotDescription

FORMAT_VERSION = 2
"""2: with a checksum. Version 1 files (no checksum) still load."""
READABLE_VERSIONS = (1, 2)
KINDS = ("invdyn", "planner")


class CheckpointError(InputError):
    """A checkpoint that cannot be used here; the message names the file and the problem."""


def save_checkpoint(
    path: str | Path,
    *,
    kind: str,
    config: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    normalizer: Normalizer,
    metadata: dict[str, Any] | None = None,
    train_state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically. ``train_state`` (optimizer, schedule, RNG) enables resume."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    payload = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": dict(config),
        "state_dict": {name: tensor.detach().cpu() for name, tensor in state_dict.items()},
        "normalizer": normalizer.state_dict(),
        "metadata": dict(metadata or {}),
    }
    if train_state is not None:
        payload["train_state"] = train_state
    payload["sha256"] = payload_digest(payload)
    with atomic_file(path) as handle:
        torch.save(payload, handle)
    return Path(path)


def payload_digest(payload: dict[str, Any]) -> str:
    """SHA-256 of a checkpoint's contents but its own checksum: every tensor's dtype, shape and bytes and
    every plain value, in a fixed order (dict keys sorted)."""
    digest = hashlib.sha256()
    _feed(digest, {key: value for key, value in payload.items() if key != "sha256"})
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"tensor {tensor.dtype} {tuple(value.shape)}:".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(f"dict {len(value)}:".encode())
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__} {len(value)}:".encode())
        for item in value:
            _feed(digest, item)
    else:  # str, int, float, bool, None
        digest.update(f"{type(value).__name__} {value!r};".encode())


def _torch_reason(error: Exception) -> str:
    """PyTorch's message, unless it advises loading without ``weights_only``: for a file that failed the
    safe load, that advice is the attack."""
    text = " ".join(str(error).split())
    return "" if "weights_only" in text else f" ({text})"


def read_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Load and validate a checkpoint's structure, version, checksum and (if given) kind."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{path}: not a checkpoint of this package: it holds objects other than tensors "
                              "and plain values, and such a file is refused without running any of it") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable, truncated or corrupt checkpoint{_torch_reason(error)}") from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{path}: not a fastpolicy_invdyn_ros checkpoint (no format_version)")
    if payload["format_version"] not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path}: format_version {payload['format_version']} is not supported (expected {FORMAT_VERSION})"
        )
    if payload["format_version"] >= 2 and payload.get("sha256") != payload_digest(payload):
        raise CheckpointError(f"{path}: corrupt checkpoint: its contents do not match their SHA-256 checksum "
                              "(a changed bit or an edited file); refused")
    missing = {"kind", "config", "state_dict", "normalizer"} - set(payload)
    if missing:
        raise CheckpointError(f"{path}: checkpoint is missing {sorted(missing)}")
    if kind is not None and payload["kind"] != kind:
        raise CheckpointError(f"{path}: checkpoint kind is {payload['kind']!r} but {kind!r} was expected")
    return payload


def checkpoint_identity(path: str | Path) -> str:
    """The SHA-256 of a checkpoint's weights, configs, normalizer and metadata: its stored checksum (computed
    for a version 1 file). What an ONNX export of it is stamped with (``runtime``)."""
    payload = read_checkpoint(path)
    return payload.get("sha256") or payload_digest(payload)


def check_config(path: str | Path, config: dict[str, Any], **expected: Any) -> None:
    """Refuse a checkpoint whose config differs from each expected value that is not None."""
    mismatches = [
        f"{name}={config.get(name)!r} (expected {value!r})"
        for name, value in expected.items()
        if value is not None and config.get(name) != value
    ]
    if mismatches:
        raise CheckpointError(f"{path}: checkpoint does not match: " + ", ".join(mismatches))


def check_robot(path: str | Path, robot: RobotDescription) -> None:
    """Refuse a checkpoint made for a robot other than ``robot`` (one that names no robot passes)."""
    metadata = read_checkpoint(path)["metadata"]
    if "robot" in metadata and (differences := RobotDescription.from_dict(metadata["robot"]).differences(robot)):
        raise CheckpointError(f"{path}: made for another robot: {'; '.join(differences)}")


def load_invdyn(
    path: str | Path,
    device: torch.device | str = "cpu",
    *,
    model_type: str | None = None,
    state_dim: int | None = None,
    action_dim: int | None = None,
    seq_length: int | None = None,
    use_probabilistic: bool | None = None,
) -> InvDynamic:
    """An inverse dynamics model in eval mode with its ``normalizer``, checked against expectations."""
    payload = read_checkpoint(path, kind="invdyn")
    check_config(
        path,
        payload["config"],
        model_type=model_type,
        state_dim=state_dim,
        action_dim=action_dim,
        seq_length=seq_length,
        use_probabilistic=use_probabilistic,
    )
    try:
        model = build_invdyn(InvDynConfig.from_dict(payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: weights do not fit the stored config ({error})") from None
    model.normalizer = Normalizer.from_state_dict(payload["normalizer"]).to(device)
    return model.to(device).eval()


def load_planner(
    path: str | Path,
    device: torch.device | str = "cpu",
    *,
    state_dim: int | None = None,
    goal_dim: int | None = None,
    horizon: int | None = None,
    n_obs_steps: int | None = None,
) -> DiffusionPlanner:
    """A diffusion planner in eval mode with its ``normalizer``, checked against expectations."""
    payload = read_checkpoint(path, kind="planner")
    check_config(path, payload["config"], state_dim=state_dim, goal_dim=goal_dim, horizon=horizon,
                 n_obs_steps=n_obs_steps)
    try:
        planner = DiffusionPlanner(PlannerConfig.from_dict(payload["config"]))
        planner.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: weights do not fit the stored config ({error})") from None
    planner.normalizer = Normalizer.from_state_dict(payload["normalizer"]).to(device)
    return planner.to(device).eval()


def load_enhanced_invdyn_model(
    model_path: str | Path,
    state_dim: int,
    action_dim: int,
    device: torch.device | str = "cpu",
    use_probabilistic: bool | None = None,
) -> InvDynamic:
    """The seed's loader: an ``EnhancedInvDynamic`` checked for dims and head type."""
    return load_invdyn(
        model_path,
        device,
        model_type="enhanced",
        state_dim=state_dim,
        action_dim=action_dim,
        use_probabilistic=use_probabilistic,
    )


def load_policy_models(planner_path: str | Path, invdyn_path: str | Path, device: torch.device | str = "cpu",
                       seq_length: int | None = None) -> tuple[DiffusionPlanner, InvDynamic, dict[str, Any]]:
    """The planner and the inverse dynamics model of one policy, checked against each other, and their
    metadata merged (joint_names, dt, temperature, ...: the inverse dynamics checkpoint's first)."""
    planner = load_planner(planner_path, device)
    invdyn = load_invdyn(invdyn_path, device, state_dim=planner.config.state_dim, seq_length=seq_length)
    planner_metadata = read_checkpoint(planner_path)["metadata"]
    metadata = {**planner_metadata, **read_checkpoint(invdyn_path)["metadata"]}
    # A period inferred from a recording (trainer --bag) is the nominal one only to within its jitter.
    same = {"joint_names": lambda a, b: list(a) == list(b), "dt": lambda a, b: math.isclose(a, b, rel_tol=0.01)}
    for key, equal in same.items():
        if key in planner_metadata and not equal(metadata[key], planner_metadata[key]):
            raise CheckpointError(f"{invdyn_path}: {key} {metadata[key]} differs from the planner's "
                                  f"{planner_metadata[key]}")
    if "robot" in planner_metadata and (differences := RobotDescription.from_dict(metadata["robot"]).differences(
            RobotDescription.from_dict(planner_metadata["robot"]))):
        raise CheckpointError(f"{invdyn_path}: its robot differs from the planner's: {'; '.join(differences)}")
    return planner, invdyn, metadata
