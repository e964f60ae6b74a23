"""The simulated arm: a MuJoCo model stepped at the control rate with clamped joint commands.

Each joint has one actuator, all of one kind, and its kind is the arm's command interface: a ``motor``
takes a torque (effort), a ``position`` servo a joint position, a ``velocity`` servo a joint speed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from ..core.robot import RobotDescription

DEFAULT_XML = Path(__file__).with_name("arm.xml")
"""The packaged 3-joint arm (base yaw, shoulder pitch, elbow pitch)."""


@dataclass
class ArmConfig:
    """How to build and step the simulated arm."""

    xml_path: Path = field(default_factory=lambda: DEFAULT_XML)
    """MJCF model: hinge or slide joints, each driven by one motor, position or velocity actuator (gear 1, all of
    one kind), in joint order."""
    control_dt: float = 0.01
    """Control period in seconds: one ``step`` holds a command this long (a multiple of the MuJoCo timestep)."""
    velocity_limit: float = 8.0
    """Rated speed of every joint (rad/s) that its robot description declares (MuJoCo does not limit it)."""


class ArmSim:
    """An arm driven by torque, position or velocity commands (``interface``); the state is ``[q, qd]`` in
    ``joint_names`` order."""

    def __init__(self, config: ArmConfig | None = None) -> None:
        self.config = config or ArmConfig()
        self.model = mujoco.MjModel.from_xml_path(str(self.config.xml_path))
        self.data = mujoco.MjData(self.model)
        # Separate scratch data so inverse dynamics never disturbs the simulated state.
        self._inverse_data = mujoco.MjData(self.model)
        self.interface = actuator_interface(self.model)
        """What a command is: effort, position or velocity (``robot.COMMAND_INTERFACES``)."""

        ratio = self.config.control_dt / self.model.opt.timestep
        self.substeps = round(ratio)
        if self.substeps < 1 or abs(ratio - self.substeps) > 1e-6:
            raise ValueError(
                f"control_dt={self.config.control_dt} must be a positive multiple of the "
                f"MuJoCo timestep {self.model.opt.timestep}"
            )

        self.joint_names = [self.model.joint(i).name for i in range(self.model.njnt)]
        ctrl_low, ctrl_high = self.model.actuator_ctrlrange.T
        self.command_low = _read_only(ctrl_low)
        """(J,) lowest command of each joint (the actuator's ctrlrange), in the interface's unit."""
        self.command_high = _read_only(ctrl_high)
        """(J,) highest command of each joint."""
        self.torque_limit = _read_only(_force_limit(self.model, self.interface))
        """(J,) largest torque magnitude each joint's actuator can apply, in N·m."""
        self.position_limits = _read_only(self.model.jnt_range)
        """(J, 2) lower and upper joint position limits, in rad."""
        self._applied = np.zeros(self.num_joints)
        self.reset()

    @property
    def num_joints(self) -> int:
        return self.model.njnt

    @property
    def state_dim(self) -> int:
        return 2 * self.num_joints

    @property
    def action_dim(self) -> int:
        return self.num_joints

    @property
    def dt(self) -> float:
        return self.config.control_dt

    @property
    def time(self) -> float:
        """Simulated seconds since the last ``reset``."""
        return self.data.time

    @property
    def applied_command(self) -> np.ndarray:
        """(J,) the command the last ``step`` applied, after clamping to the limits."""
        return self._applied.copy()

    def description(self) -> RobotDescription:
        """The arm as its models and nodes know it: commands of its interface within the actuators' ranges."""
        low, high = self.position_limits.T
        return RobotDescription(self.joint_names, self.dt, self.interface, command_low=self.command_low.tolist(),
                                command_high=self.command_high.tolist(), position_low=low.tolist(),
                                position_high=high.tolist(), velocity_limit=[self.config.velocity_limit] * self.num_joints,
                                goal_names=[f"{joint}/position" for joint in self.joint_names])

    def reset(self, q0: np.ndarray | None = None, qd0: np.ndarray | None = None) -> np.ndarray:
        """Restart at ``q0`` (default: the middle of every joint's range; the 3-joint arm straight up) moving at
        ``qd0`` (default: rest)."""
        q = self.position_limits.mean(axis=1) if q0 is None else self._joint_vector(q0, "q0")
        qd = self._joint_vector(qd0, "qd0")
        low, high = self.position_limits.T
        if np.any(q < low) or np.any(q > high):
            raise ValueError(f"q0={q} lies outside the joint limits {self.position_limits.tolist()}")
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = q
        self.data.qvel[:] = qd
        self._applied[:] = 0.0
        # Make derived quantities (body poses, sites) match the new state for viewers and publishers.
        mujoco.mj_forward(self.model, self.data)
        return self.state()

    def state(self) -> np.ndarray:
        """(2J,) float64 copy of ``[q, qd]``."""
        return np.concatenate((self.data.qpos, self.data.qvel))

    def step(self, command: np.ndarray) -> np.ndarray:
        """Apply ``command`` (clamped to the limits) for one control period and return the new state.

        Raises ValueError, leaving the simulation untouched, if ``command`` does not have J
        entries or holds NaN/inf: a bad command is the caller's to handle, never silently zeroed.
        """
        command = np.asarray(command, dtype=np.float64)
        if command.shape != (self.num_joints,):
            raise ValueError(f"command must have shape ({self.num_joints},), got {command.shape}")
        if not np.all(np.isfinite(command)):
            raise ValueError(f"command must be finite, got {command}")
        np.clip(command, self.command_low, self.command_high, out=self._applied)
        self.data.ctrl[:] = self._applied
        mujoco.mj_step(self.model, self.data, nstep=self.substeps)
        return self.state()

    def sample_configuration(self, rng: np.random.Generator, margin: float = 0.1) -> np.ndarray:
        """(J,) uniform random joint positions at least ``margin`` rad inside every limit.

        Every such configuration is reachable: the arm has no contacts and its limits keep the
        links clear of the floor and of each other.
        """
        low, high = self.position_limits.T
        if np.any(high - low <= 2 * margin):
            raise ValueError(f"margin={margin} leaves no room inside the joint limits")
        return rng.uniform(low + margin, high - margin)

    def inverse_dynamics(self, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> np.ndarray:
        """(J,) joint torques that produce acceleration ``qdd`` at ``(q, qd)``.

        ``M(q) qdd + bias(q, qd) - passive(qd)``: gravity, Coriolis and joint damping are
        compensated. The result is not clamped to the torque limits.
        """
        data = self._inverse_data
        data.qpos[:] = q
        data.qvel[:] = qd
        data.qacc[:] = qdd
        mujoco.mj_inverse(self.model, data)
        return data.qfrc_inverse.copy()

    def command_for(self, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> np.ndarray:
        """(J,) the command that gives acceleration ``qdd`` at ``(q, qd)`` over the next control period.

        Effort: the inverse dynamics torque itself. A servo's force ``gain·u + b0 + b1·q + b2·qd`` depends on
        the state, which moves during the period; the command is the one whose force, at the state half a
        period ahead, is that torque less what the robot's controller adds by itself (gravity compensation),
        so that its force over the period averages the torque. Not clamped to the command limits.
        """
        torque = self.inverse_dynamics(q, qd, qdd)
        if self.interface == "effort":
            return torque
        half = 0.5 * self.dt
        q_mid, qd_mid = q + half * qd + 0.5 * half * half * qdd, qd + half * qdd
        gain, bias = self.model.actuator_gainprm[:, 0], self.model.actuator_biasprm[:, :3]
        # mj_inverse computed the gravity compensation too; an actuator adds what its joint routes through it.
        servo_force = torque - self._inverse_data.qfrc_gravcomp * self.model.jnt_actgravcomp
        return (servo_force - bias[:, 0] - bias[:, 1] * q_mid - bias[:, 2] * qd_mid) / gain

    def _joint_vector(self, value: np.ndarray | None, name: str) -> np.ndarray:
        if value is None:
            return np.zeros(self.num_joints)
        array = np.asarray(value, dtype=np.float64)
        if array.shape != (self.num_joints,) or not np.all(np.isfinite(array)):
            raise ValueError(f"{name} must be {self.num_joints} finite numbers, got {value!r}")
        return array


def actuator_interface(model: mujoco.MjModel) -> str:
    """The command interface of the arm's actuators, which must drive joint i with actuator i 1:1, all of one kind.

    MuJoCo compiles its shortcuts into gain and bias parameters: a ``motor`` has no bias, a ``position`` servo
    the bias ``-kp·q - kv·qd``, a ``velocity`` servo ``-kv·qd``.
    """
    one_dof = np.isin(model.jnt_type, (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE))
    if not np.all(one_dof) or model.nu != model.njnt:
        raise ValueError("the arm model needs only hinge/slide joints and exactly one actuator per joint")
    if not np.all(model.jnt_limited):
        raise ValueError("every joint needs a position range (goals and starts are sampled inside it)")
    if not np.array_equal(model.actuator_trnid[:, 0], np.arange(model.njnt)):
        raise ValueError("actuator i must drive joint i")
    if not np.all(model.actuator_gear[:, 0] == 1.0) or not np.all(model.actuator_ctrllimited):
        raise ValueError("actuators must have gear 1 and a ctrlrange")
    if np.any(model.actuator_dyntype != mujoco.mjtDyn.mjDYN_NONE) or np.any(
            model.actuator_gaintype != mujoco.mjtGain.mjGAIN_FIXED):
        raise ValueError("actuators must be motor, position or velocity actuators (no activation dynamics)")
    affine = model.actuator_biastype == mujoco.mjtBias.mjBIAS_AFFINE
    stiff, damped = model.actuator_biasprm[:, 1] != 0.0, model.actuator_biasprm[:, 2] != 0.0
    kinds = {"effort" if not bias else "position" if k else "velocity" if d else "unknown"
             for bias, k, d in zip(affine, stiff, damped)}
    if len(kinds) != 1 or "unknown" in kinds:
        raise ValueError(f"the actuators must all be motors, all position or all velocity servos, got {sorted(kinds)}")
    return kinds.pop()


def _force_limit(model: mujoco.MjModel, interface: str) -> np.ndarray:
    """Largest torque of each joint's actuator: a motor's ctrlrange, else its forcerange or the joint's
    actuatorfrcrange (infinite when neither limits it)."""
    if interface == "effort":
        return np.abs(model.actuator_ctrlrange).max(axis=1)
    limits = np.full(model.nu, np.inf)
    for limited, ranges in ((model.actuator_forcelimited, model.actuator_forcerange),
                            (model.jnt_actfrclimited, model.jnt_actfrcrange)):
        limits = np.where(limited.astype(bool), np.minimum(limits, np.abs(ranges).max(axis=1)), limits)
    return limits


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64)
    array.setflags(write=False)
    return array
