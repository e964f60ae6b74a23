"""A URDF for a robot description, as a robot's package would ship it (a chain of revolute joints)."""
from __future__ import annotations

from fastpolicy_invdyn_ros.core.robot import RobotDescription


def urdf_of(robot: RobotDescription, fixed: str = "", **scales: float) -> str:
    """The URDF of ``robot``'s joints and limits; ``fixed`` names a joint made fixed, and ``scales`` multiply a
    limit of every joint (``effort``, ``velocity``, ``upper``)."""
    joints = []
    for i, name in enumerate(robot.joint_names):
        limit = {"lower": robot.position_low[i], "upper": robot.position_high[i] * scales.get("upper", 1.0),
                 "effort": robot.command_high[i] * scales.get("effort", 1.0),
                 "velocity": robot.velocity_limit[i] * scales.get("velocity", 1.0)}
        attributes = " ".join(f'{key}="{value:.9g}"' for key, value in limit.items())
        kind = "fixed" if name == fixed else "revolute"
        joints.append(f'<joint name="{name}" type="{kind}"><parent link="link{i}"/><child link="link{i + 1}"/>'
                      f'<axis xyz="0 0 1"/><limit {attributes}/></joint>')
    links = "".join(f'<link name="link{i}"/>' for i in range(len(robot.joint_names) + 1))
    return f'<robot name="arm">{links}{"".join(joints)}</robot>'
