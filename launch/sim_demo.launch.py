"""The simulated MuJoCo arm and the policy driving it to a series of random goals.

    ros2 launch fastpolicy_invdyn_ros sim_demo.launch.py [robot:=arm3] [num_goals:=5] [seed:=0] [device:=cpu] ...

arm_sim publishes /joint_states, applies the commands of its robot's controller and sends the goals to
/invdyn_policy/goal; the policy is started by invdyn_policy.launch.py with the same arguments. The
3-joint arm (default) takes /forward_command_controller/commands; the UR5e, position commands:

    ros2 launch fastpolicy_invdyn_ros sim_demo.launch.py robot:=ur5e controller:=forward_position_controller \
        planner_model_path:=<share>/models/ur5e/planner_final.pth \
        invdyn_model_path:=<share>/models/ur5e/invdyn_enhanced_final.pth
    # or controller:=joint_trajectory_controller command_output:=trajectory
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "fastpolicy_invdyn_ros"


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument("sim_params_file", default_value=PathJoinSubstitution([share, "config", "arm_sim.yaml"]),
                              description="Parameters file of the arm_sim node"),
        DeclareLaunchArgument("num_goals", default_value="5",
                              description="Random goals the arm is sent one after another"),
        DeclareLaunchArgument("seed", default_value="0", description="Seeds the start configuration and the goals"),
        DeclareLaunchArgument("robot", default_value="arm3",
                              description="The simulated robot: arm3 (3 joints, torque) or ur5e (6 joints, position)"),
    ]
    sim = Node(
        package=PACKAGE,
        executable="arm_sim",
        name="arm_sim",
        output="screen",
        parameters=[
            LaunchConfiguration("sim_params_file"),
            {
                "num_goals": ParameterValue(LaunchConfiguration("num_goals"), value_type=int),
                "seed": ParameterValue(LaunchConfiguration("seed"), value_type=int),
                "robot": LaunchConfiguration("robot"),
            },
        ],
    )
    # params_file, planner_model_path, invdyn_model_path, device and runtime given to this launch reach the policy too.
    policy = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch", "invdyn_policy.launch.py"])),
    )
    return LaunchDescription(arguments + [sim, policy])
