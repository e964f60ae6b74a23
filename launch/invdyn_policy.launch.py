"""The invdyn_policy node with its parameters file, commanding the ros2_control forward_command_controller.

    ros2 launch fastpolicy_invdyn_ros invdyn_policy.launch.py \
        [params_file:=<yaml>] [planner_model_path:=<pth>] [invdyn_model_path:=<pth>] [device:=auto|cpu|cuda]

The model paths and the device given here override the parameters file.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "fastpolicy_invdyn_ros"
CONTROLLER_TOPIC = "/forward_command_controller/commands"


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument("params_file",
                              default_value=PathJoinSubstitution([share, "config", "invdyn_policy.yaml"]),
                              description="Parameters file of the invdyn_policy node"),
        DeclareLaunchArgument("planner_model_path",
                              default_value=PathJoinSubstitution([share, "models", "planner_final.pth"]),
                              description="Diffusion planner checkpoint"),
        DeclareLaunchArgument("invdyn_model_path",
                              default_value=PathJoinSubstitution([share, "models", "invdyn_enhanced_final.pth"]),
                              description="Inverse dynamics checkpoint"),
        DeclareLaunchArgument("device", default_value="auto", description="auto (CUDA when present), cpu or cuda"),
    ]
    policy = Node(
        package=PACKAGE,
        executable="invdyn_policy",
        name="invdyn_policy",
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "planner_model_path": LaunchConfiguration("planner_model_path"),
                "invdyn_model_path": LaunchConfiguration("invdyn_model_path"),
                "device": LaunchConfiguration("device"),
            },
        ],
        remappings=[("~/commands", CONTROLLER_TOPIC)],
    )
    return LaunchDescription(arguments + [policy])
