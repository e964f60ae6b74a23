"""Device selection: CUDA when present, the CPU otherwise."""
from __future__ import annotations

import torch


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks ``cuda`` when available; ``cpu``/``cuda``/``cuda:N`` are taken as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available on this machine")
    return device
