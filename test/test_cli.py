"""One convention for every tool: a bad or missing argument, or an input it cannot use, prints the usage and
one error line and exits 2; never a traceback. Each runs as its console script, as a user types it."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BAD_ARGUMENTS = {
    # tool: (arguments, words of the error line)
    "trainer": [([], "give demonstrations with --data"),
                (["--data", "/nonexistent/demos.npz"], "/nonexistent/demos.npz")],
    "collect": [(["--episodes", "0"], "episodes must be in [1, inf]")],
    "compare": [(["--steps", "-1"], "steps must be in [1, inf]")],
    "evaluate": [(["--invdyn", "/nonexistent.pth"], "no such checkpoint file")],
    "bench": [(["--num_inference_samples", "0"], "num_inference_samples must be in [1, 256]"),
              (["--runtime", "tensorflow"], "runtime must be among")],
    "bag_export": [(["--bag", "/nonexistent_bag", "--output", "x.npz"], "no such bag")],
    "record": [(["--goal_topic", "relative"], "goal_topic must be")],
    "demo": [(["--wobble", "1"], "unrecognized arguments")],
    "export_onnx": [([], "give the checkpoints to export with --checkpoints"),
                    (["--checkpoints", "/nonexistent.pth"], "no such checkpoint file")],
    "ros_bench": [(["--node_params", "rate=5"], "name:=value"), (["--runtime", "fast"], "invalid choice")],
}
CASES = [(tool, arguments, words) for tool, cases in BAD_ARGUMENTS.items() for arguments, words in cases]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[tuple[str, ...], subprocess.CompletedProcess]:
    """Every case at once (each imports PyTorch: in parallel they take the time of a few)."""
    cwd = tmp_path_factory.mktemp("cli")
    started = {}
    for tool, arguments, _ in CASES:
        executable = shutil.which(tool, path=str(Path(sys.executable).parent))
        assert executable, f"console script {tool} is installed"
        started[(tool, *arguments)] = subprocess.Popen([executable, *arguments], cwd=cwd, stdout=subprocess.PIPE,
                                                       stderr=subprocess.PIPE, text=True)
    results = {}
    for key, process in started.items():
        out, err = process.communicate(timeout=300)
        results[key] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return results


@pytest.mark.parametrize("tool, arguments, words", CASES, ids=[f"{t} {' '.join(a)}" for t, a, _ in CASES])
def test_a_bad_argument_is_a_usage_error(runs, tool: str, arguments: list[str], words: str) -> None:
    result = runs[(tool, *arguments)]
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith(f"usage: {tool}") for line in lines), result.stderr
    assert lines[-1].startswith(f"{tool}: error:") and words in lines[-1], lines[-1]
