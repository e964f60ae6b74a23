"""The simulated arm: a MuJoCo model stepped at the control rate with clamped joint torques."""
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
    """MJCF model: hinge or slide joints, each driven by one ``motor`` (gear 1), in joint order."""
    control_dt: float = 0.01
    """Control period in seconds: one ``step`` holds a torque this long (a multiple of the MuJoCo timestep)."""
    velocity_limit: float = 8.0
    """Rated speed of every joint (rad/s) that its robot description declares (MuJoCo does not limit it)."""


class ArmSim:
    """A torque-controlled arm; the state is ``[q, qd]`` in ``joint_names`` order."""

    def __init__(self, config: ArmConfig | None = None) -> None:
        self.config = config or ArmConfig()
        self.model = mujoco.MjModel.from_xml_path(str(self.config.xml_path))
        self.data = mujoco.MjData(self.model)
        # Separate scratch data so inverse dynamics never disturbs the simulated state.
        self._inverse_data = mujoco.MjData(self.model)
        _check_one_motor_per_joint(self.model)

        ratio = self.config.control_dt / self.model.opt.timestep
        self.substeps = round(ratio)
        if self.substeps < 1 or abs(ratio - self.substeps) > 1e-6:
            raise ValueError(
                f"control_dt={self.config.control_dt} must be a positive multiple of the "
                f"MuJoCo timestep {self.model.opt.timestep}"
            )

        self.joint_names = [self.model.joint(i).name for i in range(self.model.njnt)]
        ctrl_low, ctrl_high = self.model.actuator_ctrlrange.T
        self._torque_low = _read_only(ctrl_low)
        self.torque_limit = _read_only(ctrl_high)
        """(J,) largest torque magnitude each joint's motor can apply, in N·m."""
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
    def applied_torque(self) -> np.ndarray:
        """(J,) the torque the last ``step`` applied, after clamping to the limits."""
        return self._applied.copy()

    def description(self) -> RobotDescription:
        """The arm as its models and nodes know it: effort commands within the motors' ranges."""
        low, high = self.position_limits.T
        return RobotDescription(self.joint_names, self.dt, "effort", command_low=self._torque_low.tolist(),
                                command_high=self.torque_limit.tolist(), position_low=low.tolist(),
                                position_high=high.tolist(), velocity_limit=[self.config.velocity_limit] * self.num_joints,
                                goal_names=[f"{joint}/position" for joint in self.joint_names])

    def reset(self, q0: np.ndarray | None = None, qd0: np.ndarray | None = None) -> np.ndarray:
        """Restart at ``q0`` (default: all zeros, arm straight up) moving at ``qd0`` (default: rest)."""
        q = self._joint_vector(q0, "q0")
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

    def step(self, torque: np.ndarray) -> np.ndarray:
        """Apply ``torque`` (clamped to the limits) for one control period and return the new state.

        Raises ValueError, leaving the simulation untouched, if ``torque`` does not have J
        entries or holds NaN/inf: a bad command is the caller's to handle, never silently zeroed.
        """
        torque = np.asarray(torque, dtype=np.float64)
        if torque.shape != (self.num_joints,):
            raise ValueError(f"torque must have shape ({self.num_joints},), got {torque.shape}")
        if not np.all(np.isfinite(torque)):
            raise ValueError(f"torque must be finite, got {torque}")
        np.clip(torque, self._torque_low, self.torque_limit, out=self._applied)
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

    def _joint_vector(self, value: np.ndarray | None, name: str) -> np.ndarray:
        if value is None:
            return np.zeros(self.num_joints)
        array = np.asarray(value, dtype=np.float64)
        if array.shape != (self.num_joints,) or not np.all(np.isfinite(array)):
            raise ValueError(f"{name} must be {self.num_joints} finite numbers, got {value!r}")
        return array


def _check_one_motor_per_joint(model: mujoco.MjModel) -> None:
    """The state/action layout assumes actuator i drives joint i 1:1 with a symmetric torque range."""
    one_dof = np.isin(model.jnt_type, (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE))
    if not np.all(one_dof) or model.nu != model.njnt:
        raise ValueError("the arm model needs only hinge/slide joints and exactly one actuator per joint")
    if not np.all(model.jnt_limited):
        raise ValueError("every joint needs a position range (goals and starts are sampled inside it)")
    if not np.array_equal(model.actuator_trnid[:, 0], np.arange(model.njnt)):
        raise ValueError("actuator i must drive joint i")
    if not np.all(model.actuator_gear[:, 0] == 1.0) or not np.all(model.actuator_ctrllimited):
        raise ValueError("actuators must be torque motors with gear 1 and a ctrlrange")
    low, high = model.actuator_ctrlrange.T
    if not np.allclose(low, -high) or np.any(high <= 0):
        raise ValueError("actuator ctrlrange must be symmetric about zero")


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64)
    array.setflags(write=False)
    return array
