"""The package as a robot gets it: colcon build, then what `ros2 run` and `ros2 launch` use."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = "fastpolicy_invdyn_ros"
SOURCE = Path(__file__).resolve().parents[1]
EXECUTABLES = {"trainer", "collect", "compare", "evaluate", "bench", "invdyn_policy", "arm_sim", "demo", "record",
               "ros_bench", "bag_export"}


@pytest.fixture(scope="module")
def install(tmp_path_factory) -> Path:
    workspace = tmp_path_factory.mktemp("ws")
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    assert colcon, "colcon is installed with the test requirements"
    subprocess.run([colcon, "build", "--base-paths", str(SOURCE), "--build-base", "build", "--install-base",
                    "install"], cwd=workspace, check=True, capture_output=True, text=True, timeout=300)
    return workspace / "install"


def sourced(install: Path, command: str) -> subprocess.CompletedProcess:
    """Run ``command`` in bash after ``. install/setup.bash``, as a user's shell would."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(["bash", "-c", f". {install}/setup.bash && {command}"], env=env, capture_output=True,
                          text=True, timeout=120)


def test_executables_land_where_ros2_run_looks(install):
    lib = install / PACKAGE / "lib" / PACKAGE
    assert EXECUTABLES <= {path.name for path in lib.iterdir()}
    result = sourced(install, f"{lib}/trainer --help")
    assert result.returncode == 0, result.stderr
    assert "--model_type" in result.stdout and "--resume" in result.stdout


def test_launch_config_and_models_are_installed_to_share(install):
    share = install / PACKAGE / "share" / PACKAGE
    assert {"invdyn_policy.launch.py", "sim_demo.launch.py"} <= {p.name for p in (share / "launch").iterdir()}
    assert (share / "config" / "invdyn_policy.yaml").is_file()
    shipped = {"planner_final.pth", "invdyn_enhanced_final.pth", "invdyn_enhanced_final.onnx",
               "planner_final.condition.onnx", "planner_final.denoiser.onnx"}
    assert shipped <= {p.name for p in (share / "models").iterdir()}
    assert (install / PACKAGE / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file()


def test_installed_package_finds_its_models_through_the_ament_index(install):
    result = sourced(install, f"{sys.executable} -c 'from {PACKAGE}.core.paths import share_path; "
                              f"print(share_path(\"models\", \"planner_final.pth\"))'")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(install / PACKAGE / "share" / PACKAGE / "models" / "planner_final.pth")
