"""The invdyn_policy lifecycle node with its parameters file, commanding a ros2_control controller.

    ros2 launch fastpolicy_invdyn_ros invdyn_policy.launch.py \
        [params_file:=<yaml>] [planner_model_path:=<pth>] [invdyn_model_path:=<pth>] [device:=auto|cpu|cuda] \
        [runtime:=auto|torch|onnxruntime] [controller:=<name>] [command_output:=forward|trajectory] \
        [autostart:=true|false]

Which controller, for the models' command interface (their robot description says which):
effort: a ``forward_command_controller`` of effort interfaces (``controller:=forward_command_controller``,
the default, as the simulated arm); position or velocity: the forward controller of that interface
(``controller:=forward_position_controller`` / ``forward_velocity_controller``), or for position a
``joint_trajectory_controller`` with ``command_output:=trajectory`` (``controller:=joint_trajectory_controller``).
``~/commands`` (forward) and ``~/joint_trajectory`` (trajectory) go to ``/<controller>/commands`` and
``/<controller>/joint_trajectory``. The model paths, the device, the runtime and the command output given
here override the parameters file. With autostart (the
default) launch walks the node through configure and activate, as a lifecycle manager would; with
autostart:=false it stays unconfigured until one does (``ros2 lifecycle set /invdyn_policy configure``).
The node's own ``autostart`` parameter is off here: launch owns the transitions.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

PACKAGE = "fastpolicy_invdyn_ros"


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
        DeclareLaunchArgument("runtime", default_value="auto",
                              description="auto (ONNX Runtime when the models' exports match), torch or onnxruntime"),
        DeclareLaunchArgument("controller", default_value="forward_command_controller",
                              description="The ros2_control controller that takes the commands"),
        DeclareLaunchArgument("command_output", default_value="forward",
                              description="forward (Float64MultiArray) or trajectory (JointTrajectory, position)"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="Configure and activate the node once it is up"),
    ]
    policy = LifecycleNode(
        package=PACKAGE,
        executable="invdyn_policy",
        name="invdyn_policy",
        namespace="",
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "planner_model_path": LaunchConfiguration("planner_model_path"),
                "invdyn_model_path": LaunchConfiguration("invdyn_model_path"),
                "device": LaunchConfiguration("device"),
                "runtime": LaunchConfiguration("runtime"),
                "command_output": LaunchConfiguration("command_output"),
                "autostart": False,
            },
        ],
        remappings=[("~/commands", ["/", LaunchConfiguration("controller"), "/commands"]),
                    ("~/joint_trajectory", ["/", LaunchConfiguration("controller"), "/joint_trajectory"])],
    )
    autostart = IfCondition(LaunchConfiguration("autostart"))
    configure = EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(policy),
                                            transition_id=Transition.TRANSITION_CONFIGURE), condition=autostart)
    activate_when_configured = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=policy, start_state="configuring", goal_state="inactive",
        entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(policy),
                                              transition_id=Transition.TRANSITION_ACTIVATE))]), condition=autostart)
    return LaunchDescription(arguments + [policy, activate_when_configured, configure])
