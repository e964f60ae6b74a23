"""``ros_bench``: the policy's timing over DDS across processes, while it plans.

    ros2 run fastpolicy_invdyn_ros ros_bench --duration_s 30 --rate_hz 100

arm_sim (500 Hz physics, /joint_states every step, a stream of random goals so the arm keeps
moving) and invdyn_policy run as separate processes, as in the demo; this process receives the
policy's ``command_stamped``. It measures the state-to-command latency (arrival of the command
here minus the stamp of the joint state it was computed from) and its part up to the command's
send, the achieved command rate and the ticks late by more than one period, and prints them with
the node's own diagnostics (tick time, the age of the state each tick used). Like a controller
manager, this receiving end runs SCHED_FIFO by default (``--monitor_priority``).

Before the nodes start it measures the machine's floor (``--floor``): a thread at the same priority
that only waits for a deadline every period, for as long: its wake-ups late by more than one period
are ticks no code can keep on time here (a VM's host preempts it now and then).
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..core.files import write_text_atomic
from ..core.metrics import late_intervals, percentiles_ms, wake_lateness
from ..core.runtime import RuntimeConfig
from ..core.settings import setting
from ..ros.closed_loop import closed_loop
from ..ros.monitor import CommandStats
from ..ros.processes import wait_for
from ..ros.realtime import fifo_priority
from . import cli

STARTUP_ALLOWANCE_S = 60.0
LATENCY_TARGET_P99_MS = 5.0


@dataclass
class BenchOptions:
    """The ``ros_bench`` command line."""

    duration_s: float = setting(30.0, low=0.1)
    """Measured seconds."""
    rate_hz: float = setting(100.0, low=1.0, high=1000.0)
    """Control rate of the policy (its control_rate_hz)."""
    warmup_s: float = setting(3.0, low=0.0)
    """Seconds of running before measuring (first plans, caches)."""
    output_dir: str = "outputs/ros_bench"
    """Node logs and results.json."""
    planner_model_path: str = ""
    """Planner checkpoint ('': the package's models/planner_final.pth)."""
    invdyn_model_path: str = ""
    """Inverse dynamics checkpoint ('': the package's models/invdyn_enhanced_final.pth)."""
    execution: RuntimeConfig = field(default_factory=RuntimeConfig)
    """What runs the models (runtime), as the node's parameter."""
    node_params: list[str] = setting([])
    """More invdyn_policy parameters as name:=value (YAML values), e.g. executor_threads:=5 plan_in_process:=false."""
    sim_params: list[str] = setting([])
    """More arm_sim parameters as name:=value, e.g. thread_priority:=0."""
    monitor_priority: int = setting(50, low=0, high=99)
    """SCHED_FIFO priority of the receiving end here, as a controller manager's (0: normal scheduling)."""
    floor: bool = setting(True)
    """First measure the machine's floor: an idle thread at monitor_priority waking every period for duration_s."""


@dataclass
class Floor:
    """How late an idle thread wakes for a deadline every period on this machine: the floor under any tick."""

    late_wakes: int
    """Wake-ups more than one period late (more than two periods after the one before), as ``late_ticks``."""
    lateness_ms: dict[str, float]
    """p50 and p99 of how late it woke (ms)."""
    max_lateness_ms: float
    """The latest wake-up (ms late)."""


def measure_floor(rate_hz: float, duration_s: float, priority: int) -> Floor:
    """The floor at ``rate_hz`` over ``duration_s``, this thread at SCHED_FIFO ``priority`` (0: as it is)."""
    period_s = 1.0 / rate_hz
    count = max(2, round(duration_s * rate_hz))
    with fifo_priority(priority):
        lateness = wake_lateness(period_s, count)
    return Floor(late_intervals(period_s * np.arange(count) + lateness, period_s), percentiles_ms(lateness),
                 float(lateness.max() * 1e3))


def parameters(assignments: list[str]) -> dict[str, object]:
    """``name:=value`` assignments (values in YAML, as ``--ros-args -p`` reads them) as a dict."""
    values = {}
    for assignment in assignments:
        name, separator, value = assignment.partition(":=")
        if not separator:
            raise ValueError(f"parameters go as name:=value, got {assignment!r}")
        values[name] = yaml.safe_load(value)
    return values


def measure(options: BenchOptions, output_dir: Path) -> tuple[CommandStats, dict[str, str]]:
    """The monitor's statistics over ``duration_s`` and the node's last diagnostics."""
    policy = {"control_rate_hz": float(options.rate_hz), "runtime": options.execution.runtime,
              **parameters(options.node_params)}
    policy.update({name: getattr(options, name) for name in ("planner_model_path", "invdyn_model_path")
                   if getattr(options, name)})
    sim = {"num_goals": 1000, "goal_timeout_s": 4.0, **parameters(options.sim_params)}
    with closed_loop(output_dir, policy, sim, options.monitor_priority) as loop:
        monitor = loop.monitor
        if not wait_for(lambda: loop.finished() or monitor.diagnostics.get("state") == "ok", STARTUP_ALLOWANCE_S):
            raise RuntimeError(f"the policy did not start controlling in {STARTUP_ALLOWANCE_S:g} s; "
                               f"see {output_dir}/*.log")
        time.sleep(options.warmup_s)
        monitor.clear()
        time.sleep(options.duration_s)
        monitor.recording = False
        loop.check()
        return monitor.stats(1.0 / options.rate_hz), dict(monitor.diagnostics)


def print_table(options: BenchOptions, stats: CommandStats, diagnostics: dict[str, str], floor: Floor | None) -> None:
    expected = options.rate_hz * options.duration_s
    rows = [
        ("state-to-command latency p50 (ms)", f"{stats.latency_ms['p50']:.2f}", ""),
        ("state-to-command latency p99 (ms)", f"{stats.latency_ms['p99']:.2f}", f"< {LATENCY_TARGET_P99_MS:g}"),
        ("  of which until sent p50 / p99 (ms)",
         f"{stats.sent_latency_ms['p50']:.2f} / {stats.sent_latency_ms['p99']:.2f}", ""),
        ("achieved control rate (Hz)", f"{stats.rate_hz:.2f}", f"{options.rate_hz:g}"),
        ("ticks late by more than one period", str(stats.late_ticks), "0"),
        *[(f"  late at {at_s:.2f} s", f"{gap_s * 1e3:.1f} ms after the last", "") for at_s, gap_s in stats.late_at],
        *([] if floor is None else [
            ("  machine floor: idle wakes that late", str(floor.late_wakes), ""),
            ("  floor wake lateness p99 / max (ms)", f"{floor.lateness_ms['p99']:.2f} / {floor.max_lateness_ms:.2f}",
             "")]),
        ("commands received", str(stats.count), f"{expected:.0f}"),
        ("node tick latency p50 / p99 (ms)",
         f"{diagnostics.get('tick_latency_p50_ms', '?')} / {diagnostics.get('tick_latency_p99_ms', '?')}", ""),
        ("node: state age at tick p50 / p99 (ms)",
         f"{diagnostics.get('state_age_p50_ms', '?')} / {diagnostics.get('state_age_p99_ms', '?')}", ""),
        ("  of which arrival p50 / p99 (ms)",
         f"{diagnostics.get('state_transport_p50_ms', '?')} / {diagnostics.get('state_transport_p99_ms', '?')}", ""),
        ("  of which executor p50 / p99 (ms)",
         f"{diagnostics.get('state_handover_p50_ms', '?')} / {diagnostics.get('state_handover_p99_ms', '?')}", ""),
        ("node late ticks since start", diagnostics.get("late_ticks", "?"), ""),
        ("node tick phase shifts since start", diagnostics.get("tick_phase_shifts", "?"), ""),
        ("plan latency, last (ms)", diagnostics.get("plan_latency_ms", "?"), ""),
        ("node runtime: invdyn / planner",
         f"{diagnostics.get('runtime_invdyn', '?')} / {diagnostics.get('runtime_planner', '?')}", ""),
    ]
    print(f"ros_bench: invdyn_policy at {options.rate_hz:g} Hz over DDS, arm_sim at 500 Hz in another process, "
          f"{options.duration_s:g} s while planning")
    print(f"{'metric':<38}{'value':>16}{'target':>10}")
    for name, value, target in rows:
        print(f"{name:<38}{value:>16}{target:>10}")


def ros_bench(options: BenchOptions) -> int:
    output_dir = Path(options.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    floor = None
    if options.floor:
        print(f"ros_bench: the machine's floor first: an idle thread waking at {options.rate_hz:g} Hz for "
              f"{options.duration_s:g} s", flush=True)
        floor = measure_floor(options.rate_hz, options.duration_s, options.monitor_priority)
    try:
        stats, diagnostics = measure(options, output_dir)
    except (RuntimeError, FileNotFoundError) as error:
        print(f"ros_bench: error: {error}", file=sys.stderr)
        return 1
    print_table(options, stats, diagnostics, floor)
    results = {"options": asdict(options), "commands": asdict(stats), "node_diagnostics": diagnostics,
               "floor": None if floor is None else asdict(floor)}
    write_text_atomic(output_dir / "results.json", json.dumps(results, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(BenchOptions, ros_bench, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
