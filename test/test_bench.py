"""``bench`` runs end to end on the shipped models and reports every row (its timings are not asserted)."""
import math

from fastpolicy_invdyn_ros.core.settings import build
from fastpolicy_invdyn_ros.tools.bench import BenchConfig, bench


def test_bench_reports_plans_and_ticks_back_to_back_and_paced() -> None:
    results = bench(build(BenchConfig, dict(plan_iterations=2, ddpm_iterations=1, tick_iterations=5, paced_tick_iterations=5,
                                         num_inference_samples=2)))
    assert list(results) == ["plan ddim warm (2 samples)", "plan ddim cold 5 steps", "plan ddpm 100 steps",
                             "sample selection consistent (in the planner)",
                             "one tiny op (the floor)", "one tiny op (the floor), one per 10 ms",
                             "control tick, 1 sample(s)", "control tick, 1 sample(s), one per 10 ms",
                             "control tick, 2 sample(s), consistent", "control tick, 2 sample(s), consistent, one per 10 ms",
                             "control tick, 2 sample(s), mean", "control tick, 2 sample(s), mean, one per 10 ms"]
    assert all(0.0 < values["p50"] <= values["p99"] and math.isfinite(values["p99"]) for values in results.values())
