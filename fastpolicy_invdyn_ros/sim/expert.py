"""A scripted expert that reaches a goal configuration smoothly and holds it.

Without noise the command is a fixed function of (state, goal): a learned planner that sees
recent states and the goal can imitate it exactly. Per-episode jitter of the stiffness and
correlated acceleration noise make the demonstrations cover more than one path to each goal.
The reach law is an acceleration; ``ArmSim.command_for`` turns it into the arm's command: the
torque for a torque-controlled arm, the servo setpoint for a position- or velocity-controlled one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arm import ArmSim


@dataclass
class ExpertConfig:
    """Gains and perturbations of the scripted reaching expert."""

    natural_frequency: float = 6.0
    """Nominal closed-loop natural frequency w (rad/s) of the critically damped reach."""
    frequency_jitter: float = 0.2
    """Per-episode relative variation of w, drawn uniformly from w·[1 - jitter, 1 + jitter]."""
    error_saturation: float = 0.8
    """L (rad): the error acts as L·tanh(e/L), which caps the pull and the cruise speed (w·L/2) for far goals."""
    noise_scale: float = 0.3
    """Stationary std (rad/s²) of the Ornstein-Uhlenbeck acceleration noise (0: none); holding error ~ noise_scale/w²."""
    noise_time_constant: float = 0.2
    """Correlation time (s) of the noise: slow enough to bend the path, not just jitter it."""


class ScriptedExpert:
    """Computed-torque reaching: the command that gives ``qdd = w²·L·tanh(e/L) - 2w·qd + n`` (for a torque-
    controlled arm ``tau = ID(q, qd, qdd)``; for a servo, the setpoint that applies that torque).

    ``n`` is Ornstein-Uhlenbeck noise in acceleration units, i.e. the torque noise ``M(q)·n``:
    scaling by the inertia perturbs light and heavy joints alike. Call ``reset`` at the start of
    every episode to draw a new w and restart the noise.
    """

    def __init__(self, sim: ArmSim, config: ExpertConfig | None = None, rng: np.random.Generator | None = None) -> None:
        self.sim = sim
        self.config = config or ExpertConfig()
        self.rng = rng or np.random.default_rng()
        self._decay = np.exp(-sim.dt / self.config.noise_time_constant)
        self.reset()

    def reset(self) -> None:
        """Start an episode: draw this episode's natural frequency and a stationary noise sample."""
        jitter = self.config.frequency_jitter
        self.frequency = self.config.natural_frequency * self.rng.uniform(1.0 - jitter, 1.0 + jitter)
        self._noise = self.config.noise_scale * self.rng.standard_normal(self.sim.num_joints)

    def desired_acceleration(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The noise-free, time-invariant reach law for this episode's w."""
        num_joints = self.sim.num_joints
        q, qd = state[:num_joints], state[num_joints:]
        w, limit = self.frequency, self.config.error_saturation
        return w * w * limit * np.tanh((goal - q) / limit) - 2.0 * w * qd

    def __call__(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """(J,) command for ``state`` toward ``goal``; advances the noise by one control period."""
        # Exact OU discretization: keeps the stationary std at noise_scale for any control_dt.
        innovation = self.config.noise_scale * np.sqrt(1.0 - self._decay**2)
        self._noise = self._decay * self._noise + innovation * self.rng.standard_normal(self.sim.num_joints)
        num_joints = self.sim.num_joints
        acceleration = self.desired_acceleration(state, goal) + self._noise
        return self.sim.command_for(state[:num_joints], state[num_joints:], acceleration)
