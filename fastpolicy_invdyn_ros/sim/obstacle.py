"""The two-way task: reach a goal past a keep-out region that can be passed on either side.

A disk in the plane of two joints (base yaw and shoulder pitch by default) lies between the start and
the goal: the start sits on the line from the goal through the disk's centre, so the straight path
crosses it and both ways around are equally short. Entering the disk is a collision. The scripted
expert (``DetourExpert``) draws a side per episode, but decides from the state alone: once the arm
is off the centre line its side is that of the state, and only on the line (at the start) does the
drawn side break the tie. A policy that sees the state and the goal can therefore learn both ways
and which one it is on, which is what makes the task bimodal and averaging plans wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .arm import ArmSim
from .expert import ExpertConfig, ScriptedExpert


@dataclass
class ObstacleConfig:
    """Where the keep-out disk is and how starts and goals are placed around it."""

    joints: tuple[int, int] = (0, 1)
    """The two joints whose plane holds the disk."""
    center: tuple[float, float] = (0.0, 0.0)
    """Centre of the disk (rad, rad)."""
    radius: float = 0.35
    """Radius of the disk (rad): a state inside it has collided."""
    clearance: float = 0.15
    """How far outside the disk the expert passes (rad)."""
    goal_distance: tuple[float, float] = (0.9, 1.5)
    """Range of the goal's distance from the centre in that plane (rad); the start lies as far on the other side."""
    side_deadband: float = 0.03
    """Distance (rad) from the centre line within which the arm is on neither side (the drawn side decides)."""
    other_joint_margin: float = 0.2
    """The remaining joints start and end anywhere this far (rad) inside their limits."""
    episode_seconds: float = 5.0
    """Time limit of an episode: the detour is longer than a straight reach."""

    @property
    def center_array(self) -> np.ndarray:
        return np.asarray(self.center, dtype=np.float64)


def plane(q: np.ndarray, config: ObstacleConfig) -> np.ndarray:
    """(..., 2) the positions in the disk's plane."""
    return np.asarray(q)[..., list(config.joints)]


def line_frame(goal: np.ndarray, config: ObstacleConfig) -> np.ndarray:
    """(2, 2) the rotation taking the disk's plane to axes along the line from its centre to ``goal`` (row 0) and
    beside it (row 1, the ``+`` side)."""
    direction = plane(goal, config) - config.center_array
    direction = direction / np.linalg.norm(direction)
    return np.array([direction, [-direction[1], direction[0]]])


def signed_offset(q: np.ndarray, goal: np.ndarray, config: ObstacleConfig) -> np.ndarray:
    """Signed distance (rad) of ``q`` (..., J) from the line through the disk's centre and the goal: its side."""
    return (plane(q, config) - config.center_array) @ line_frame(goal, config)[1]


def side_of(offsets: np.ndarray, config: ObstacleConfig) -> int:
    """+1 or -1: the side of the largest offset beyond the dead band; 0: none."""
    offsets = np.atleast_1d(offsets)
    largest = offsets[np.argmax(np.abs(offsets))]
    return 0 if abs(largest) <= config.side_deadband else int(np.sign(largest))


def clearance(states: np.ndarray, config: ObstacleConfig) -> np.ndarray:
    """(...) each state's distance (rad) outside the disk's edge in its plane; negative inside."""
    return np.linalg.norm(plane(states, config) - config.center_array, axis=-1) - config.radius


def sample_two_way_task(sim: ArmSim, rng: np.random.Generator, config: ObstacleConfig) -> tuple[np.ndarray, np.ndarray]:
    """A rest start and a goal on opposite sides of the disk, on one line through its centre."""
    low, high = sim.position_limits.T
    margin = config.other_joint_margin
    while True:
        angle = rng.uniform(-np.pi, np.pi)
        direction = np.array([np.cos(angle), np.sin(angle)])
        distance = rng.uniform(*config.goal_distance)
        start, goal = sim.sample_configuration(rng, margin), sim.sample_configuration(rng, margin)
        start[list(config.joints)] = config.center_array - distance * direction
        goal[list(config.joints)] = config.center_array + distance * direction
        if np.all(start >= low + margin) and np.all(start <= high - margin) and \
                np.all(goal >= low + margin) and np.all(goal <= high - margin):
            return start, goal


class DetourExpert(ScriptedExpert):
    """The reaching expert, steered around the disk on the side of the state (the episode's drawn side
    while the arm is on the centre line)."""

    def __init__(self, sim: ArmSim, obstacle: ObstacleConfig, config: ExpertConfig | None = None,
                 rng: np.random.Generator | None = None) -> None:
        self.obstacle = obstacle
        self.side = 1
        super().__init__(sim, config, rng)

    def reset(self) -> None:
        super().reset()
        self.side = 1 if self.rng.random() < 0.5 else -1

    def desired_acceleration(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The reach law toward ``target``, with the disk's plane turned so that its axes run along and
        beside the centre line: the law saturates each axis on its own, and in the joints' own axes a way
        diagonal in the plane saturated both joints and squeezed the sideways pull. The arm left the line
        half as fast on such ways as on ways along a joint (0.04-0.08 against 0.09-0.15 rad 0.16 s in),
        so the way was decided late exactly on those starts; now every way leaves it as one along a joint."""
        joints = np.array(self.obstacle.joints)
        num_joints = self.sim.num_joints
        turn = line_frame(goal, self.obstacle)
        turned, via = state.copy(), self.target(state[:num_joints], goal)
        turned[joints], turned[num_joints + joints] = turn @ state[joints], turn @ state[num_joints + joints]
        via[joints] = turn @ via[joints]
        acceleration = super().desired_acceleration(turned, via)
        acceleration[joints] = turn.T @ acceleration[joints]
        return acceleration

    def target(self, q: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The goal, or, while the straight way to it is blocked, a via point beside the disk: abreast of its
        centre until the arm is less than ``clearance`` short of it, then as far past it toward the goal.

        The via point's distance from the centre line is where the tangents to the circle of radius
        ``radius + clearance``, from the arm and from the goal, cross the line abreast of the centre (the
        farther of the two): a straight way to it, and from it to the goal, keeps the clearance, where a
        via point on that circle let the way to it cut the corner (passing 0.04-0.13 rad outside the disk)."""
        obstacle = self.obstacle
        here, there, center = plane(q, obstacle), plane(goal, obstacle), obstacle.center_array
        reach = obstacle.radius + obstacle.clearance
        if _distance_to_segment(center, here, there) >= reach:
            return goal
        offset = float(signed_offset(q, goal, obstacle))
        side = self.side if abs(offset) <= obstacle.side_deadband else int(np.sign(offset))
        direction, normal = line_frame(goal, obstacle)
        along = float(np.dot(here - center, direction))
        beside = max(_tangent_crossing(along, side * offset, reach),
                     _tangent_crossing(-float(np.linalg.norm(there - center)), 0.0, reach))
        via = goal.copy()
        via[list(obstacle.joints)] = (center + side * beside * normal
                                      + (0.0 if along < -obstacle.clearance else reach) * direction)
        return via


def _tangent_crossing(along: float, beside: float, reach: float) -> float:
    """How far beside the centre the tangent from (along, beside) (the centre's frame, ``along`` < 0) to the circle
    of radius ``reach`` crosses the line abreast of the centre, on the positive side; ``reach`` from inside the
    circle or from abreast of the centre and beyond."""
    distance = float(np.hypot(along, beside))
    if distance <= reach or along >= 0.0:
        return reach
    angle = np.arctan2(beside, along) - np.arccos(reach / distance)
    touch_along, touch_beside = reach * np.cos(angle), reach * np.sin(angle)
    return beside + (touch_beside - beside) * along / (along - touch_along)


def _distance_to_segment(point: np.ndarray, start: np.ndarray, end: np.ndarray) -> float:
    span = end - start
    t = float(np.clip(np.dot(point - start, span) / max(np.dot(span, span), 1e-12), 0.0, 1.0))
    return float(np.linalg.norm(point - (start + t * span)))
