"""The launch files: they compile, and (launch/launch_ros are not installable here) their structure is
checked with ``ast``: executables are console scripts of setup.py, ``~/commands`` goes to the controller."""
from __future__ import annotations

import ast
import py_compile
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))


def console_scripts() -> set[str]:
    return set(re.findall(r'"(\w+) = \{PACKAGE\}\.[\w.]+:main"', (ROOT / "setup.py").read_text()))


def calls(path: Path, name: str) -> list[ast.Call]:
    """Every call of ``name(...)`` in the file."""
    return [node for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == name]


def keyword(call: ast.Call, name: str) -> ast.expr:
    return next(item.value for item in call.keywords if item.arg == name)


def test_the_launch_files_compile() -> None:
    assert {path.name for path in LAUNCH_FILES} == {"invdyn_policy.launch.py", "sim_demo.launch.py"}
    for path in LAUNCH_FILES:
        py_compile.compile(str(path), doraise=True)


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda path: path.name)
def test_nodes_run_console_scripts_of_this_package(path: Path) -> None:
    nodes = calls(path, "Node") + calls(path, "LifecycleNode")
    assert nodes
    for node in nodes:
        assert ast.literal_eval(keyword(node, "executable")) in console_scripts()
        assert ast.unparse(keyword(node, "package")) == "PACKAGE"
    assert 'PACKAGE = "fastpolicy_invdyn_ros"' in path.read_text()


def test_the_policy_launch_remaps_its_commands_and_takes_the_arguments() -> None:
    path = ROOT / "launch" / "invdyn_policy.launch.py"
    [node] = calls(path, "LifecycleNode")
    assert ast.unparse(keyword(node, "remappings")) == (
        "[('~/commands', ['/', LaunchConfiguration('controller'), '/commands']), "
        "('~/joint_trajectory', ['/', LaunchConfiguration('controller'), '/joint_trajectory'])]")
    declared = {ast.literal_eval(call.args[0]): call for call in calls(path, "DeclareLaunchArgument")}
    assert set(declared) == {"params_file", "planner_model_path", "invdyn_model_path", "device", "runtime",
                             "controller", "command_output", "autostart"}
    assert ast.literal_eval(keyword(declared["controller"], "default_value")) == "forward_command_controller"
    parameters = ast.unparse(keyword(node, "parameters"))
    assert parameters.startswith("[LaunchConfiguration('params_file'), {")
    assert "'autostart': False" in parameters, "launch owns the transitions, not the node"
    assert ast.literal_eval(keyword(node, "namespace")) == "", "launch_ros requires a LifecycleNode's namespace"


def test_the_policy_launch_configures_then_activates_only_after_configuring() -> None:
    """The usual autostart: configure at start; activate when configuring reached inactive (never after a
    deactivate, which also ends in inactive)."""
    path = ROOT / "launch" / "invdyn_policy.launch.py"
    changes = [ast.unparse(keyword(call, "transition_id")) for call in calls(path, "ChangeState")]
    assert changes == ["Transition.TRANSITION_CONFIGURE", "Transition.TRANSITION_ACTIVATE"]
    [handler] = calls(path, "OnStateTransition")
    assert ast.literal_eval(keyword(handler, "start_state")) == "configuring"
    assert ast.literal_eval(keyword(handler, "goal_state")) == "inactive"
    conditions = [ast.unparse(keyword(call, "condition")) for call in calls(path, "EmitEvent") +
                  calls(path, "RegisterEventHandler") if any(item.arg == "condition" for item in call.keywords)]
    assert conditions == ["autostart", "autostart"]
    assert (ROOT / "config" / "invdyn_policy.yaml").is_file()


def test_the_demo_launch_starts_the_sim_and_includes_the_policy_launch() -> None:
    path = ROOT / "launch" / "sim_demo.launch.py"
    assert [ast.literal_eval(keyword(node, "executable")) for node in calls(path, "Node")] == ["arm_sim"]
    assert "'invdyn_policy.launch.py'" in ast.unparse(calls(path, "IncludeLaunchDescription")[0])
    assert (ROOT / "config" / "arm_sim.yaml").is_file()


def test_the_launch_descriptions_load_where_launch_ros_is_installed() -> None:
    pytest.importorskip("launch_ros")
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    for path in LAUNCH_FILES:
        assert PythonLaunchDescriptionSource(str(path)).try_get_launch_description_without_context() is not None
