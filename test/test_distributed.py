"""The trainer under torchrun: 2 processes with gloo on the CPU, killed, resumed, as good as 1 process."""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from fastpolicy_invdyn_ros.core.checkpoint import read_checkpoint
from fastpolicy_invdyn_ros.core.training import TrainConfig, train

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def torchrun(args: list[str]) -> subprocess.Popen:
    """torchrun as on one node of a multi-node job: its own rendezvous endpoint (a fresh port per run)."""
    command = [str(BIN / "torchrun"), "--nnodes", "1", "--nproc_per_node", "2", "--rdzv-backend", "c10d",
               "--rdzv-endpoint", f"localhost:{free_port()}", "--rdzv-id", f"run{time.monotonic_ns()}",
               str(BIN / "trainer"), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def kill_run(pattern: str) -> None:
    """SIGKILL every process of a run (torchrun's workers run in sessions of their own) and wait until none is left."""
    deadline = time.monotonic() + 30
    while subprocess.run(["pkill", "-KILL", "-f", pattern], check=False).returncode == 0:
        assert time.monotonic() < deadline, f"processes of {pattern} survive SIGKILL"
        time.sleep(0.1)


def test_two_gloo_processes_train_resume_and_match_one_process(demos_path, tmp_path):
    assert shutil.which("torchrun", path=str(BIN)), "torchrun comes with torch"
    options = dict(steps=400, hidden_dim=128, num_layers=2, batch_size=128, lr=1e-3, seed=0)
    args = ["--data", str(demos_path), "--output_dir", str(tmp_path / "ddp"), "--checkpoint_every", "100",
            "--no-progress"] + [f"--{name}={value}" for name, value in options.items()]

    first = torchrun(args)
    last = tmp_path / "ddp" / "invdyn_enhanced_last.pth"
    deadline = time.monotonic() + 240
    while not last.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    kill_run(str(tmp_path / "ddp"))
    first.wait()
    assert last.exists(), first.stdout.read()
    killed_at = read_checkpoint(last)["train_state"]["step"]
    assert killed_at < 400 and not (tmp_path / "ddp" / "invdyn_enhanced_final.pth").exists()
    assert len(read_checkpoint(last)["train_state"]["torch_rng"]) == 2  # each rank's RNG stream

    resumed = torchrun(args + ["--resume"])
    try:
        output, _ = resumed.communicate(timeout=300)
    finally:
        kill_run(str(tmp_path / "ddp"))
    assert resumed.returncode == 0, output
    assert f"at step {killed_at}/400" in output
    assert output.count("wrote ") == 1, "only rank 0 writes and reports"
    ddp = read_checkpoint(tmp_path / "ddp" / "invdyn_enhanced_final.pth")["metadata"]["val_metric"]

    single = train(TrainConfig(data=[str(demos_path)], output_dir=str(tmp_path / "single"), progress=False,
                               **options)).val_metric
    assert ddp < 0.5 and single < 0.5
    assert abs(ddp - single) <= 0.3 * single + 0.01, (ddp, single)
