"""fastpolicy_invdyn_ros: diffusion state planner + inverse dynamics policy for ROS 2 robot arms.

The package is in layers, each importing only those below it (``test/test_layers.py`` enforces it
with import-linter):

* ``core``: the library (models, planning, the control tick, data, checkpoints, metrics); no ROS;
* ``sim``: the simulated MuJoCo arm, its scripted expert and tasks; no ROS;
* ``ros``: the nodes (``invdyn_policy``, ``arm_sim``, the expert) and their helpers;
* ``tools``: the console scripts.

The seed's public names are importable from here; they load on first use, so importing the
package (as every console script does) costs nothing.
"""
from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "load_enhanced_invdyn_model": "core.checkpoint",
    "generate_actions_with_enhanced_invdyn": "core.actions",
    "convert_to_enhanced_invdyn": "core.conversion",
    "InvDynamic": "core.invdyn",
    "MLPInvDynamic": "core.invdyn",
    "SeqInvDynamic": "core.invdyn",
    "EnhancedInvDynamic": "core.invdyn",
    "InvDynConfig": "core.invdyn",
    "DiffusionPlanner": "core.planner",
    "PlannerConfig": "core.planner",
    "Policy": "core.policy",
    "PolicyConfig": "core.policy",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
