"""The simulated MuJoCo arm and the policy driving it to a series of random goals.

    ros2 launch fastpolicy_invdyn_ros sim_demo.launch.py [num_goals:=5] [seed:=0] [device:=cpu] ...

arm_sim publishes /joint_states, applies /forward_command_controller/commands and sends the goals to
/invdyn_policy/goal; the policy is started by invdyn_policy.launch.py with the same arguments.
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
            },
        ],
    )
    # params_file, planner_model_path, invdyn_model_path, device and runtime given to this launch reach the policy too.
    policy = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch", "invdyn_policy.launch.py"])),
    )
    return LaunchDescription(arguments + [sim, policy])
