"""The second simulated robot, the 6-joint position-controlled UR5e, and the robot registry, on real MuJoCo:
its description, contact-free joint ranges, position servos that track, the scripted expert reaching on it,
``collect --robot ur5e`` into the trainer (position commands as offsets from the positions), ``arm_sim --robot ur5e`` taking position commands and
trajectories over DDS, and models of one robot refused by the node and ``evaluate`` set up for the other."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
from builtin_interfaces.msg import Duration
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from fastpolicy_invdyn_ros.core.data import load_episodes
from fastpolicy_invdyn_ros.core.normalization import Normalizer
from fastpolicy_invdyn_ros.core.training import TrainConfig, train
from fastpolicy_invdyn_ros.ros.common import spinning
from fastpolicy_invdyn_ros.ros.processes import (policy_command, private_domain_id, ros_environment, sim_command,
                                               start, stop_process, use_domain, wait_for)
from fastpolicy_invdyn_ros.sim import (ROBOTS, ExpertConfig, ScriptedExpert, TaskConfig, arm_config, make_arm,
                                       run_episode, sample_task)
from fastpolicy_invdyn_ros.tools.collect import main as collect_main
from fastpolicy_invdyn_ros.tools.evaluate import main as evaluate_main

UR5E_JOINTS = ["shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint",
               "wrist_3_joint"]
STARTUP_S = 60.0


@pytest.fixture(scope="module")
def ur5e():
    return make_arm("ur5e")


def test_the_ur5e_is_a_six_joint_position_controlled_arm(ur5e) -> None:
    robot = ur5e.description()
    assert robot.joint_names == UR5E_JOINTS and robot.command_interface == "position"
    assert robot.command_low == robot.position_low and robot.command_high == robot.position_high
    assert robot.velocity_limit == [3.14] * 6
    np.testing.assert_allclose(ur5e.torque_limit, [150, 150, 150, 28, 28, 28])
    np.testing.assert_allclose(ur5e.model.body_mass[1:], [3.761, 8.058, 2.846, 1.37, 1.3, 0.365])
    assert make_arm().description().command_interface == "effort", "the 3-joint arm stays the default"


def test_a_robot_is_a_name_or_an_mjcf_file(tmp_path) -> None:
    assert arm_config(str(ROBOTS["ur5e"].xml_path)).xml_path == ROBOTS["ur5e"].xml_path
    with pytest.raises(ValueError, match="arm3"):
        arm_config("ur10")


def test_every_configuration_in_the_joint_ranges_is_free_of_contact(ur5e) -> None:
    """Contacts are off in the model because the ranges keep links off the floor and apart: switched on, none
    occur."""
    model = mujoco.MjModel.from_xml_path(str(ROBOTS["ur5e"].xml_path))
    model.opt.disableflags &= ~int(mujoco.mjtDisableBit.mjDSBL_CONTACT)
    for array in (model.geom_contype, model.geom_conaffinity, model.body_contype, model.body_conaffinity):
        array[:] = 1
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    low, high = model.jnt_range.T
    for q in rng.uniform(low, high, size=(3000, 6)):
        data.qpos[:] = q
        mujoco.mj_forward(model, data)
        assert data.ncon == 0, (q, [(model.geom(c.geom1).name, model.geom(c.geom2).name) for c in data.contact])


def test_position_servos_track_a_target_and_hold_it_against_gravity(ur5e) -> None:
    start, target = np.array([0.0, -1.0, -1.0, -1.0, 0.0, 0.0]), np.array([0.4, -1.4, -0.6, -1.4, 0.5, -0.5])
    ur5e.reset(start)
    for _ in range(100):  # 1 s
        state = ur5e.step(target)
    np.testing.assert_allclose(state[:6], target, atol=2e-3)
    assert np.all(np.abs(state[6:]) < 0.01)
    np.testing.assert_array_equal(ur5e.applied_command, target)
    ur5e.step(target + 10.0)
    np.testing.assert_array_equal(ur5e.applied_command, ur5e.command_high), "commands clamp to the joint ranges"


def test_the_expert_reaches_random_goals_on_the_ur5e(ur5e) -> None:
    rng = np.random.default_rng(4)
    expert = ScriptedExpert(ur5e, ExpertConfig(), rng)
    for _ in range(5):
        q0, goal = sample_task(ur5e, rng, TaskConfig().goal_margin)
        expert.reset()
        record = run_episode(ur5e, expert, goal, q0, 300)
        assert record.reached, record.final_error
        assert np.all(np.abs(record.states[:, 6:]) < 3.14), "within the UR5e's joint speed limit"


def test_an_mjcf_of_velocity_servos_is_a_velocity_arm_the_expert_drives(tmp_path) -> None:
    """The 3-joint arm's MJCF with velocity servos for its motors, given by path: its interface is read from the
    actuators, and the expert's reach law becomes velocity setpoints."""
    text = re.sub(r'<motor name="(\w+)" joint="(\w+)" ctrlrange="[^"]*"/>',
                  r'<velocity name="\1" joint="\2" kv="40" ctrlrange="-8 8" forcerange="-45 45"/>',
                  ROBOTS["arm3"].xml_path.read_text())
    (tmp_path / "velocity_arm.xml").write_text(text)
    sim = make_arm(str(tmp_path / "velocity_arm.xml"))
    assert sim.description().command_interface == "velocity" and sim.description().command_high == [8.0] * 3
    rng = np.random.default_rng(0)
    expert = ScriptedExpert(sim, ExpertConfig(), rng)
    q0, goal = sample_task(sim, rng, TaskConfig().goal_margin)
    assert run_episode(sim, expert, goal, q0, 400).reached


def test_collect_lists_the_robots(capsys) -> None:
    collect_main(["--list_robots"])
    assert capsys.readouterr().out.split() == ["arm3", "ur5e"]


@pytest.fixture(scope="module")
def ur5e_models(tmp_path_factory) -> dict[str, Path]:
    """``collect --robot ur5e`` into the trainer: a few steps of each model (finite, not good)."""
    directory = tmp_path_factory.mktemp("ur5e")
    collect_main(["--robot", "ur5e", "--output", str(directory / "demos.npz"), "--episodes", "4",
                  "--episode_seconds", "1.0"])
    common = dict(data=[str(directory / "demos.npz")], output_dir=str(directory), steps=20, batch_size=32,
                  progress=False, eval_every=1000, checkpoint_every=1000)
    return {"planner_model_path": train(TrainConfig(model_type="planner", **common)).final_path,
            "invdyn_model_path": train(TrainConfig(model_type="enhanced", hidden_dim=32, num_layers=2,
                                                   gru_hidden_dim=16, **common)).final_path}


def test_collect_for_the_ur5e_writes_its_data_and_trains(ur5e_models, ur5e) -> None:
    episodes = load_episodes(Path(ur5e_models["planner_model_path"]).parent / "demos.npz")
    assert episodes.states.shape == (400, 12) and episodes.actions.shape == (400, 6)
    assert episodes.robot == ur5e.description()
    assert all(Path(path).is_file() for path in ur5e_models.values())


def test_position_commands_are_learned_as_offsets_from_the_measured_positions(ur5e_models, demos) -> None:
    episodes = load_episodes(Path(ur5e_models["planner_model_path"]).parent / "demos.npz")
    normalizer = Normalizer.fit(episodes)
    assert normalizer.action_reference.tolist() == list(range(6)), "each joint's command from its position"
    states, actions = (torch.from_numpy(array) for array in (episodes.states, episodes.actions))
    normalized = normalizer.normalize_action(actions, states)
    assert torch.allclose(normalized.mean(0), torch.zeros(6), atol=1e-4)
    torch.testing.assert_close(normalizer.unnormalize_action(normalized, states), actions)
    with pytest.raises(ValueError, match="give the state"):
        normalizer.unnormalize_action(normalized)
    assert Normalizer.fit(demos).action_reference is None, "torques stay absolute"


def test_models_of_one_robot_are_refused_for_the_other(ur5e_models, tmp_path, capsys) -> None:
    """The node set up for the 3-joint arm stops at start with one line; evaluate on it exits 2."""
    arm3 = make_arm().joint_names
    log = tmp_path / "node.log"
    overrides = {**{name: str(path) for name, path in ur5e_models.items()}, "joint_names": arm3}
    process = start(policy_command(overrides), ros_environment(private_domain_id()), log)
    assert process.wait(STARTUP_S) != 0
    lines = log.read_text().strip().splitlines()
    assert len(lines) == 1 and "do not match the models'" in lines[0] and "shoulder_pan_joint" in lines[0], lines
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main(["--robot", "arm3", "--planner", str(ur5e_models["planner_model_path"]), "--episodes", "1",
                       "--output_dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "made for another robot" in capsys.readouterr().err


class PositionProbe(Node):
    """Sends position commands and trajectories to arm_sim's controller topics, keeps the newest joint state."""

    def __init__(self) -> None:
        super().__init__("position_probe")
        self.state: JointState | None = None
        self.create_subscription(JointState, "/joint_states", self._on_state, 10)
        self.forward = self.create_publisher(Float64MultiArray, "/forward_position_controller/commands", 10)
        self.trajectory = self.create_publisher(JointTrajectory, "/joint_trajectory_controller/joint_trajectory", 10)

    def _on_state(self, msg: JointState) -> None:
        self.state = msg

    def positions(self) -> np.ndarray:
        return np.array(self.state.position)

    def near(self, target: np.ndarray, tolerance: float = 0.01) -> bool:
        return self.state is not None and bool(np.all(np.abs(self.positions() - target) < tolerance))


@pytest.fixture
def ur5e_sim(tmp_path) -> Iterator[tuple[PositionProbe, Path]]:
    domain = private_domain_id()
    use_domain(domain)
    log = tmp_path / "arm_sim.log"
    with spinning(PositionProbe) as probe:
        process = start(sim_command({"robot": "ur5e", "start_positions": START.tolist()}), ros_environment(domain), log)
        try:
            assert wait_for(lambda: probe.state is not None or process.poll() is not None, 30.0), log.read_text()
            yield probe, log
        finally:
            assert stop_process(process) == 0, log.read_text()


START = np.array([0.0, -1.0, -1.0, -1.0, 0.0, 0.0])


def test_arm_sim_drives_the_ur5e_by_position_commands_and_trajectories(ur5e_sim) -> None:
    probe, log = ur5e_sim
    assert probe.state.name == UR5E_JOINTS
    wait_for(lambda: False, 0.3)
    assert probe.near(START, 1e-9), "held still until the first command"

    target = START + np.array([0.3, -0.2, 0.2, -0.3, 0.3, 0.3])
    probe.forward.publish(Float64MultiArray(data=target.tolist()))
    assert wait_for(lambda: probe.near(target), 5.0), probe.positions()
    probe.forward.publish(Float64MultiArray(data=[0.0, 0.0]))  # the wrong size: ignored, the target held
    wait_for(lambda: False, 0.3)
    assert probe.near(target)
    assert wait_for(lambda: "bad command(s) in 1 s, the first a command of 2 values" in log.read_text(), 2.0)

    # A trajectory in another joint order, through a point at 0.5 s to the last at 1 s.
    order = [5, 4, 3, 2, 1, 0]
    middle, end = target + 0.1, START
    probe.trajectory.publish(JointTrajectory(joint_names=[UR5E_JOINTS[i] for i in order], points=[
        JointTrajectoryPoint(positions=middle[order].tolist(), time_from_start=Duration(nanosec=500_000_000)),
        JointTrajectoryPoint(positions=end[order].tolist(), time_from_start=Duration(sec=1))]))
    assert wait_for(lambda: probe.near(middle, 0.05), 3.0), probe.positions()
    assert wait_for(lambda: probe.near(end), 5.0), probe.positions()
