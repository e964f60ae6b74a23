"""The robot a model is made for: its joints, command interface, limits, and what the state, action and
goal vectors mean. Saved in every checkpoint and in the NPZ demonstrations; the node checks its
configuration (and a URDF, when given) against it."""
from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field, replace

COMMAND_INTERFACES = ("position", "velocity", "effort")
UNITS = {"position": "rad", "velocity": "rad/s", "effort": "N m"}
"""Units of each interface's command (revolute joints; a prismatic joint's are m, m/s and N)."""
LIMIT_TOLERANCE = 1e-6
"""Relative slack when limits are compared (they pass through float32 and text)."""
_LIMITS = ("command_low", "command_high", "position_low", "position_high", "velocity_limit")


class RobotMismatch(ValueError):
    """A configuration, a URDF or data that contradicts the robot description."""


@dataclass
class RobotDescription:
    """One robot's interface to the models (per-joint lists are in ``joint_names`` order; None: not known)."""

    joint_names: list[str]
    """The commanded joints, in the order of the action columns."""
    control_dt: float
    """Seconds between commands (and between the states a model sees)."""
    command_interface: str = ""
    """What an action commands per joint: position, velocity or effort ('': the data did not say)."""
    command_low: list[float] | None = None
    """Lowest command per joint, in the interface's unit."""
    command_high: list[float] | None = None
    """Highest command per joint, in the interface's unit."""
    position_low: list[float] | None = None
    """Lower joint position limit per joint (rad)."""
    position_high: list[float] | None = None
    """Upper joint position limit per joint (rad)."""
    velocity_limit: list[float] | None = None
    """Largest joint speed per joint (rad/s)."""
    state_names: list[str] = field(default_factory=list)
    """What each state entry is ('<joint>/position', '<joint>/velocity' or any other name); empty: every
    joint's position, then every joint's velocity."""
    goal_names: list[str] = field(default_factory=list)
    """What each goal entry is: a state entry's name (a target for it, e.g. '<joint>/position') or a
    quantity of its own (e.g. 'tool/x' for an end-effector position)."""

    def __post_init__(self) -> None:
        self.joint_names = [str(name) for name in self.joint_names]
        self.control_dt = float(self.control_dt)
        self.state_names = [str(name) for name in self.state_names] or joint_state_names(self.joint_names)
        self.goal_names = [str(name) for name in self.goal_names]
        for name in _LIMITS:
            if getattr(self, name) is not None:
                setattr(self, name, [float(value) for value in getattr(self, name)])
        self._validate()

    def _validate(self) -> None:
        if not self.joint_names or len(set(self.joint_names)) != len(self.joint_names):
            raise RobotMismatch(f"joint_names must be distinct and at least one, got {self.joint_names}")
        if not self.control_dt > 0.0:
            raise RobotMismatch(f"control_dt must be positive, got {self.control_dt}")
        if self.command_interface not in ("", *COMMAND_INTERFACES):
            raise RobotMismatch(f"command_interface must be one of {COMMAND_INTERFACES}, got {self.command_interface!r}")
        for name in _LIMITS:
            values = getattr(self, name)
            if values is not None and (len(values) != len(self.joint_names) or not all(map(math.isfinite, values))):
                raise RobotMismatch(f"{name} needs {len(self.joint_names)} finite values, got {values}")
        for low, high in (("command_low", "command_high"), ("position_low", "position_high")):
            lows, highs = getattr(self, low), getattr(self, high)
            if (lows is None) != (highs is None) or (lows is not None and any(a > b for a, b in zip(lows, highs))):
                raise RobotMismatch(f"{low}/{high} must both be given, with low <= high")
        if len(set(self.state_names)) != len(self.state_names) or len(set(self.goal_names)) != len(self.goal_names):
            raise RobotMismatch("state and goal entry names must be distinct")

    @property
    def action_names(self) -> list[str]:
        return [f"{joint}/{self.command_interface or 'command'}" for joint in self.joint_names]

    @property
    def action_labels(self) -> list[str]:
        """Each action entry's name and unit, for tables and plots."""
        unit = UNITS.get(self.command_interface)
        return [f"{name} [{unit}]" if unit else name for name in self.action_names]

    @property
    def joint_state_layout(self) -> bool:
        """The state is every joint's position then every joint's velocity (what a JointState gives)."""
        return self.state_names == joint_state_names(self.joint_names)

    def goal_state_indices(self) -> list[int]:
        """The state entry each goal entry targets (-1: a quantity of its own)."""
        index = {name: i for i, name in enumerate(self.state_names)}
        return [index.get(name, -1) for name in self.goal_names]

    def check_sizes(self, state_dim: int, action_dim: int, goal_dim: int) -> None:
        """Raise RobotMismatch unless the vectors' sizes are the ones this description names."""
        for what, names, size in (("state", self.state_names, state_dim), ("action", self.joint_names, action_dim),
                                  ("goal", self.goal_names, goal_dim)):
            if len(names) != size:
                raise RobotMismatch(f"the {what} has {size} entries, the robot description names {len(names)}: "
                                    f"{names}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> RobotDescription:
        return cls(**values)

    def with_interface(self, command_interface: str | None) -> RobotDescription:
        """This description with its command interface decided: the data's, else ``command_interface``, else
        effort (the seed's format); data that says another than ``command_interface`` is refused."""
        if command_interface and self.command_interface and command_interface != self.command_interface:
            raise RobotMismatch(f"the data's commands are {self.command_interface}, not {command_interface}")
        return replace(self, command_interface=self.command_interface or command_interface or "effort")

    def completed_by(self, other: RobotDescription) -> RobotDescription:
        """This description with what it does not know (interface, limits) taken from ``other``, a description
        of the same robot (e.g. the checkpoint being fine-tuned); a robot that differs is refused."""
        known = {name: getattr(other, name) for name in ("command_interface", *_LIMITS) if not getattr(self, name)}
        completed = replace(self, **known)
        if differences := completed.differences(other):
            raise RobotMismatch(f"the robots differ: {'; '.join(differences)}")
        return completed

    def differences(self, other: RobotDescription) -> list[str]:
        """What differs between two descriptions of what should be the same robot (empty: nothing)."""
        found = [f"{name} {getattr(self, name)} vs {getattr(other, name)}"
                 for name in ("joint_names", "command_interface", "state_names", "goal_names")
                 if getattr(self, name) != getattr(other, name)]
        if not math.isclose(self.control_dt, other.control_dt, rel_tol=0.01):
            found.append(f"control_dt {self.control_dt:g} vs {other.control_dt:g} s")
        for name in _LIMITS:
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None and theirs is not None and not _close(mine, theirs):
                found.append(f"{name} {mine} vs {theirs}")
        return found


def joint_state_names(joint_names: list[str]) -> list[str]:
    return [f"{joint}/position" for joint in joint_names] + [f"{joint}/velocity" for joint in joint_names]


def default_description(joint_names: list[str], control_dt: float, state_dim: int, goal_dim: int) -> RobotDescription:
    """What data without a description tells: its joints and period; the state is [positions, velocities]
    when its size says so (else entries named state_<i>); the goal targets the first goal_dim state entries
    (the seed's convention)."""
    state_names = (joint_state_names(joint_names) if state_dim == 2 * len(joint_names)
                   else [f"state_{i}" for i in range(state_dim)])
    goal_names = state_names[:goal_dim] if goal_dim <= state_dim else [f"goal_{i}" for i in range(goal_dim)]
    return RobotDescription(joint_names, control_dt, state_names=state_names, goal_names=goal_names)


def _close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=LIMIT_TOLERANCE, abs_tol=LIMIT_TOLERANCE)
                                    for x, y in zip(a, b))


def urdf_differences(description: RobotDescription, urdf_xml: str) -> list[str]:
    """Where a URDF contradicts the description: a joint it lacks or does not move, or a range or limit of
    the description beyond the URDF's (a description within the URDF's limits is fine)."""
    import yourdfpy  # only when a URDF is given: a node without one does not need it

    try:
        urdf = yourdfpy.URDF.load(io.StringIO(urdf_xml), build_scene_graph=False, load_meshes=False,
                                  build_collision_scene_graph=False, load_collision_meshes=False)
    except Exception as error:  # yourdfpy raises whatever lxml or its own parsing does
        return [f"the URDF does not parse: {error}"]
    found = []
    for i, name in enumerate(description.joint_names):
        joint = urdf.joint_map.get(name)
        if joint is None or joint.type in ("fixed", "floating", "planar"):
            found.append(f"joint {name} is {'not in' if joint is None else f'a {joint.type} joint of'} the URDF")
            continue
        limit = joint.limit
        if limit is None:
            continue  # a continuous joint without <limit>: nothing to compare
        checks = [("velocity_limit", description.velocity_limit, limit.velocity, 1.0)]
        if joint.type != "continuous":
            checks += [("position_low", description.position_low, limit.lower, -1.0),
                       ("position_high", description.position_high, limit.upper, 1.0)]
        if description.command_interface == "effort":
            checks += [("command_high", description.command_high, limit.effort, 1.0),
                       ("command_low", description.command_low, None if limit.effort is None else -limit.effort,
                        -1.0)]
        for what, values, bound, sign in checks:
            if values is not None and bound is not None and sign * (values[i] - bound) > LIMIT_TOLERANCE * max(
                    1.0, abs(bound)):
                found.append(f"joint {name}: {what} {values[i]:g} is beyond the URDF's {bound:g}")
    return found
