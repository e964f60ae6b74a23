"""``evaluate`` end to end on the shipped models: expert and policy rows, the CSV files and the PNGs, on the
reaching task and on the two-way obstacle task."""
import csv
import math
import shutil

from fastpolicy_invdyn_ros.core.settings import build
from fastpolicy_invdyn_ros.tools.evaluate import EvaluateConfig, evaluate
from fastpolicy_invdyn_ros.core.paths import share_path


def test_evaluate_writes_table_csv_and_plots_and_tells_models_of_one_kind_apart(tmp_path) -> None:
    shipped = share_path("models", "invdyn_enhanced_final.pth")
    paths = []
    for directory in ("first", "second"):
        (tmp_path / directory).mkdir()
        paths.append(str(shutil.copy(shipped, tmp_path / directory)))
    output = tmp_path / "out"

    rows = evaluate(EvaluateConfig(invdyn=paths, episodes=2, output_dir=str(output)))

    names = [row.controller for row in rows]
    assert names == ["expert", "enhanced(first)+ddim+consistent", "enhanced(second)+ddim+consistent"]
    expert, first, second = rows
    assert expert.success_rate == 1.0
    # The first two of the held-out goals `evaluate --episodes 50` reaches all of.
    assert first.success_rate == second.success_rate == 1.0
    assert all(0.0 < row.tick_p50_ms <= row.tick_p99_ms and 0.0 < row.plan_p50_ms for row in (first, second))
    assert all(math.isfinite(row.rms_jerk) and row.sparc < 0.0 for row in rows)
    with open(output / "evaluate.csv", newline="") as f:
        assert [row["controller"] for row in csv.DictReader(f)] == names
    assert {path.name for path in output.glob("*.png")} == {f"{name}.png" for name in names}


def test_the_obstacle_task_reports_collisions_sides_and_switches_per_episode(tmp_path) -> None:
    config = build(EvaluateConfig, {"task": "obstacle", "episodes": 2, "sample_selections": ["consistent", "mean"],
                                    "output_dir": str(tmp_path)})
    rows = evaluate(config)
    assert [row.controller for row in rows] == ["expert", "enhanced+ddim+consistent", "enhanced+ddim+mean"]
    expert = rows[0]
    assert expert.success_rate == 1.0 and expert.collision_rate == 0.0 and expert.side_plus + expert.side_minus == 1.0
    assert math.isnan(expert.median_switches) and all(row.median_switches >= 0 for row in rows[1:])
    with open(tmp_path / "episodes.csv", newline="") as f:
        episodes = list(csv.DictReader(f))
    assert len(episodes) == 6 and {row["side"] for row in episodes} <= {"1", "-1", "0"}
    for row in episodes:  # collided exactly when the least clearance is negative, and then it has a time
        inside = float(row["min_clearance"]) < 0.0
        assert (row["collided"] == "True") == inside and math.isnan(float(row["collided_at_s"])) != inside
    assert all(float(row["min_clearance"]) > 0.1 for row in episodes[:2]), "the expert passes with clearance"
    assert (tmp_path / "paths.png").stat().st_size > 10_000
