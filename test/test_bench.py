"""``bench`` runs end to end on the shipped models and their committed ONNX exports, and reports every row per
runtime, on screen and as ``--json`` (its timings are not asserted)."""
import json
import math
from pathlib import Path

from fastpolicy_invdyn_ros.tools.bench import main

PER_RUNTIME = ["plan_ddim_warm", "plan_ddim_cold", "plan_ddpm_100", "tick_back_to_back", "tick_paced",
               "tick_mean_back_to_back", "tick_mean_paced"]


def test_bench_reports_plans_and_ticks_per_runtime_back_to_back_and_paced_as_json(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bench.json"
    assert main(["--plan_iterations", "2", "--ddpm_iterations", "1", "--tick_iterations", "5",
                 "--paced_tick_iterations", "5", "--num_inference_samples", "2", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())
    assert all(set(row) == {"runtime", "what", "p50_ms", "p99_ms"} for row in rows)
    assert [(row["runtime"], row["what"]) for row in rows] == (
        [("torch", what) for what in PER_RUNTIME] + [("onnxruntime", what) for what in PER_RUNTIME]
        + [("torch", "sample_selection"), ("numpy", "plan_ensemble"), ("torch", "floor_back_to_back"),
           ("torch", "floor_paced")])
    assert all(0.0 < row["p50_ms"] <= row["p99_ms"] and math.isfinite(row["p99_ms"]) for row in rows)
    out = capsys.readouterr()
    assert "| onnxruntime | tick_paced |" in out.out
    assert "ticks paced at 10 ms under SCHED_FIFO 50" in out.out or "under normal scheduling" in out.out
    assert "invdyn runs in onnxruntime" in out.err
