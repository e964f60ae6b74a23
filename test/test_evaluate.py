"""``evaluate`` end to end on the shipped models: expert and policy rows, the CSV and one PNG per controller."""
import csv
import math
import shutil

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
    assert names == ["expert", "enhanced(first)+ddim", "enhanced(second)+ddim"]
    expert, first, second = rows
    assert expert.success_rate == 1.0
    # The first two of the held-out goals `evaluate --episodes 50` reaches all of.
    assert first.success_rate == second.success_rate == 1.0
    assert all(0.0 < row.tick_p50_ms <= row.tick_p99_ms and 0.0 < row.plan_p50_ms for row in (first, second))
    assert all(math.isfinite(row.rms_jerk) and row.sparc < 0.0 for row in rows)
    with open(output / "evaluate.csv", newline="") as f:
        assert [row["controller"] for row in csv.DictReader(f)] == names
    assert {path.name for path in output.glob("*.png")} == {f"{name}.png" for name in names}
