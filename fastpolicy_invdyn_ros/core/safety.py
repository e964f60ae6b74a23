"""What the controller does when it cannot trust its input or its models: the safe command."""
from __future__ import annotations

from dataclasses import dataclass

from .settings import check, setting

SAFE_MODES = ("hold", "zero")


@dataclass
class SafetyConfig:
    """When and how the safe command replaces the policy's; every field may change between ticks."""

    safe_mode: str = setting("hold", choices=SAFE_MODES)
    """The safe command on bad or stale input or a policy failure: hold the last command, or ramp to zero
    (both through the slew limit)."""
    state_timeout_s: float = setting(0.1, low=0.001, high=60.0)
    """Seconds without a valid joint state before the safe command is used."""

    def __post_init__(self) -> None:
        check(self)
