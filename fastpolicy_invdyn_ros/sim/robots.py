"""The simulated robots by name, so that every tool and node takes ``--robot NAME`` (or an MJCF file's path).

* ``arm3``: the 3-joint torque-controlled arm (``arm.xml``), the default;
* ``ur5e``: a 6-joint UR5e with position servos (``ur5e.xml``, from Universal Robots' published parameters).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..core.paths import share_path
from .arm import DEFAULT_XML, ArmConfig, ArmSim

DEFAULT_ROBOT = "arm3"
ROBOTS: dict[str, ArmConfig] = {
    DEFAULT_ROBOT: ArmConfig(xml_path=DEFAULT_XML),
    # 180 deg/s: the UR5e's joint speed limit (MuJoCo has no such limit; the description declares it).
    "ur5e": ArmConfig(xml_path=Path(__file__).with_name("ur5e.xml"), velocity_limit=3.14),
}
"""The built-in robots (their MJCF and rated speed)."""


def arm_config(robot: str, control_dt: float | None = None) -> ArmConfig:
    """The built-in robot named ``robot``, else an arm of the MJCF file at that path (with ``ArmConfig``'s rated
    speed); its control period ``control_dt`` (None: ``ArmConfig``'s). Raises ValueError for anything else."""
    if robot in ROBOTS:
        config = ROBOTS[robot]
    elif robot.endswith(".xml") and Path(robot).is_file():
        config = ArmConfig(xml_path=Path(robot))
    else:
        raise ValueError(f"robot must be one of {sorted(ROBOTS)} or an MJCF (.xml) file, got {robot!r}")
    return config if control_dt is None else replace(config, control_dt=control_dt)


def make_arm(robot: str = DEFAULT_ROBOT, control_dt: float | None = None) -> ArmSim:
    """The simulated arm ``robot`` names (``arm_config``)."""
    return ArmSim(arm_config(robot, control_dt))


def shipped_model(robot: str, name: str) -> Path:
    """A committed checkpoint (``planner_final.pth``, ``invdyn_enhanced_final.pth``) of a built-in robot: in
    ``models/`` for the default arm, ``models/<robot>/`` for the others (``make models``, ``make models-<robot>``)."""
    if robot not in ROBOTS:
        raise ValueError(f"no models ship for robot {robot!r}: give the checkpoints' paths")
    return share_path("models", name) if robot == DEFAULT_ROBOT else share_path("models", robot, name)
