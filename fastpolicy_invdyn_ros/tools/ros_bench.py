"""``ros_bench``: the policy's timing over DDS across processes, while it plans.

    ros2 run fastpolicy_invdyn_ros ros_bench --duration_s 30 --rate_hz 100

arm_sim (500 Hz physics, /joint_states every step, a stream of random goals so the arm keeps
moving) and invdyn_policy run as separate processes, as in the demo; this process receives the
policy's ``command_stamped``. It measures the state-to-command latency (arrival of the command
here minus the stamp of the joint state it was computed from) and its part up to the command's
send, the achieved command rate and the ticks late by more than one period, and prints them with
the node's own diagnostics (tick time, the age of the state each tick used). Like a controller
manager, this receiving end runs SCHED_FIFO by default (``--monitor_priority``).

Meanwhile it watches the machine's own stalls (``--watch``, ``stalls``): a process per CPU at
SCHED_FIFO 99 that only wakes every millisecond. Each late tick is listed with the longest stall
of a core while it was awaited: with none (every watcher on time), the code was late.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from ..core.files import write_text_atomic
from ..core.metrics import percentiles_ms
from ..core.runtime import RuntimeConfig
from ..core.settings import setting
from ..ros.closed_loop import closed_loop
from ..ros.monitor import CommandStats
from ..ros.processes import wait_for
from . import cli
from .stalls import START_DELAY_S, STALL_S, CoreWatch, StallWatch, worst_stall

STARTUP_ALLOWANCE_S = 60.0
LATENCY_TARGET_P99_MS = 2.0
"""The most the state-to-command p99 may be (100 Hz, planning meanwhile, ONNX Runtime, 2 cores); PyTorch's tick made
3-5 ms."""


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
    watch: bool = setting(True)
    """Watch the machine's own stalls meanwhile (a process per CPU at SCHED_FIFO 99, ``stalls``), to tell the
    late ticks the machine caused from the code's."""


@dataclass
class LateTick:
    """A command sent more than one period after the one before."""

    at_s: float
    """When it was sent, in seconds after the first measured command."""
    gap_ms: float
    """The interval before it."""
    machine_stall_ms: float | None
    """The longest a core was held from every process meanwhile (``stalls.worst_stall``; None: not watched)."""

    def machine_stalled(self) -> bool | None:
        """A core was held longer than ``stalls.STALL_S`` meanwhile (None: not watched)."""
        return None if self.machine_stall_ms is None else self.machine_stall_ms > STALL_S * 1e3


@dataclass
class MachineStalls:
    """What the watchers saw on each core over the measured time."""

    realtime: bool
    """They ran at SCHED_FIFO 99; without permission they wait like any thread, and the stalls are not the
    machine's alone."""
    stalls: dict[int, int]
    """Per CPU: wake-ups late by more than ``stalls.STALL_S``."""
    max_ms: dict[int, float]
    """Per CPU: the latest wake-up (ms late)."""
    lateness_ms: dict[int, dict[str, float]]
    """Per CPU: p50 and p99 of how late the watcher woke (ms)."""


def machine_stalls(cores: list[CoreWatch]) -> MachineStalls:
    return MachineStalls(all(core.realtime for core in cores),
                         {core.cpu: len(core.stalls()) for core in cores},
                         {core.cpu: float(core.lateness_s.max() * 1e3) for core in cores},
                         {core.cpu: percentiles_ms(core.lateness_s) for core in cores})


def late_ticks(stats: CommandStats, first_sent_s: float, cores: list[CoreWatch] | None) -> list[LateTick]:
    """The late commands, each with the machine's worst stall while it was awaited."""
    return [LateTick(at_s, gap_s * 1e3, None if cores is None else
                     worst_stall(cores, first_sent_s + at_s - gap_s, first_sent_s + at_s) * 1e3)
            for at_s, gap_s in stats.late_at]


def parameters(assignments: list[str]) -> dict[str, object]:
    """``name:=value`` assignments (values in YAML, as ``--ros-args -p`` reads them) as a dict."""
    values = {}
    for assignment in assignments:
        name, separator, value = assignment.partition(":=")
        if not separator:
            raise ValueError(f"parameters go as name:=value, got {assignment!r}")
        values[name] = yaml.safe_load(value)
    return values


@dataclass
class Measurement:
    """What one run of ``measure`` saw."""

    commands: CommandStats
    """The monitor's statistics of the policy's commands."""
    diagnostics: dict[str, str]
    """The node's last diagnostics."""
    late: list[LateTick]
    """The late commands."""
    machine: MachineStalls | None
    """The machine's stalls meanwhile (None: not watched)."""


def measure(options: BenchOptions, output_dir: Path) -> Measurement:
    """The policy over DDS for ``duration_s`` after ``warmup_s``, and the machine's stalls meanwhile."""
    policy = {"control_rate_hz": float(options.rate_hz), "runtime": options.execution.runtime,
              **parameters(options.node_params)}
    policy.update({name: getattr(options, name) for name in ("planner_model_path", "invdyn_model_path")
                   if getattr(options, name)})
    sim = {"num_goals": 1000, "goal_timeout_s": 4.0, **parameters(options.sim_params)}
    # The watchers start before the nodes, whose start-up would slow theirs.
    with (StallWatch() if options.watch else contextlib.nullcontext()) as watch, \
            closed_loop(output_dir, policy, sim, options.monitor_priority) as loop:
        monitor = loop.monitor
        if not wait_for(lambda: loop.finished() or monitor.diagnostics.get("state") == "ok", STARTUP_ALLOWANCE_S):
            raise RuntimeError(f"the policy did not start controlling in {STARTUP_ALLOWANCE_S:g} s; "
                               f"see {output_dir}/*.log")
        time.sleep(options.warmup_s)
        if watch is not None:
            watch.start(time.time() + START_DELAY_S, options.duration_s)
            time.sleep(START_DELAY_S)
        monitor.clear()
        time.sleep(options.duration_s)
        monitor.recording = False
        loop.check()
        commands = monitor.stats(1.0 / options.rate_hz)
        cores = None if watch is None else watch.result()
        return Measurement(commands, dict(monitor.diagnostics), late_ticks(commands, monitor.sent_ns[0] * 1e-9, cores),
                           None if cores is None else machine_stalls(cores))


def stall_text(late: LateTick) -> str:
    stalled = late.machine_stalled()
    if stalled is None:
        return "not watched"
    return f"stall {late.machine_stall_ms:.1f} ms" if stalled else "no stall"


def late_without_stall(measurement: Measurement) -> int | None:
    """The late ticks while every core was the guest's: the code's (None: not watched)."""
    if measurement.machine is None:
        return None
    return sum(not late.machine_stalled() for late in measurement.late)


def machine_rows(measurement: Measurement) -> list[tuple[str, str, str]]:
    """The late ticks with no machine stall meanwhile, and the stalls per CPU."""
    machine = measurement.machine
    if machine is None:
        return []
    return [("  with no machine stall meanwhile", str(late_without_stall(measurement)), "0"),
            (f"machine stalls > {STALL_S * 1e3:g} ms, per CPU", " / ".join(map(str, machine.stalls.values())), ""),
            ("  longest per CPU (ms)", " / ".join(f"{value:.1f}" for value in machine.max_ms.values()), ""),
            *([] if machine.realtime else [("  (watchers without SCHED_FIFO: not only the machine's)", "", "")])]


def print_table(options: BenchOptions, measurement: Measurement) -> None:
    stats, diagnostics = measurement.commands, measurement.diagnostics
    expected = options.rate_hz * options.duration_s
    rows = [
        ("state-to-command latency p50 (ms)", f"{stats.latency_ms['p50']:.2f}", ""),
        ("state-to-command latency p99 (ms)", f"{stats.latency_ms['p99']:.2f}", f"≤ {LATENCY_TARGET_P99_MS:g}"),
        ("  of which until sent p50 / p99 (ms)",
         f"{stats.sent_latency_ms['p50']:.2f} / {stats.sent_latency_ms['p99']:.2f}", ""),
        ("achieved control rate (Hz)", f"{stats.rate_hz:.2f}", f"{options.rate_hz:g}"),
        ("ticks late by more than one period", str(stats.late_ticks), "0"),
        *[(f"  at {late.at_s:.2f} s, {late.gap_ms:.1f} ms after the last", stall_text(late), "")
          for late in measurement.late],
        *machine_rows(measurement),
        ("commands received", str(stats.count), f"{expected:.0f}"),
        ("node tick latency p50 / p99 (ms)",
         f"{diagnostics.get('tick_latency_p50_ms', '?')} / {diagnostics.get('tick_latency_p99_ms', '?')}", ""),
        ("node tick start delay p50 / p99 / max (ms)",
         " / ".join(diagnostics.get(f"tick_start_delay_{q}_ms", "?") for q in ("p50", "p99", "max")), ""),
        ("node: state age at tick p50 / p99 (ms)",
         f"{diagnostics.get('state_age_p50_ms', '?')} / {diagnostics.get('state_age_p99_ms', '?')}", ""),
        ("  of which arrival p50 / p99 (ms)",
         f"{diagnostics.get('state_transport_p50_ms', '?')} / {diagnostics.get('state_transport_p99_ms', '?')}", ""),
        ("  of which until the tick took it p50 / p99 (ms)",
         f"{diagnostics.get('state_handover_p50_ms', '?')} / {diagnostics.get('state_handover_p99_ms', '?')}", ""),
        ("node late ticks since start", diagnostics.get("late_ticks", "?"), ""),
        ("node tick phase shifts since start", diagnostics.get("tick_phase_shifts", "?"), ""),
        ("plan latency, last (ms)", diagnostics.get("plan_latency_ms", "?"), ""),
        ("node runtime: invdyn / planner",
         f"{diagnostics.get('runtime_invdyn', '?')} / {diagnostics.get('runtime_planner', '?')}", ""),
    ]
    print(f"ros_bench: invdyn_policy at {options.rate_hz:g} Hz over DDS, arm_sim at 500 Hz in another process, "
          f"{options.duration_s:g} s while planning")
    names, values = (max(len(row[i]) for row in rows) + 2 for i in (0, 1))
    print(f"{'metric':<{names}}{'value':>{values}}{'target':>10}")
    for name, value, target in rows:
        print(f"{name:<{names}}{value:>{values}}{target:>10}")


def ros_bench(options: BenchOptions) -> int:
    output_dir = Path(options.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        measurement = measure(options, output_dir)
    except (RuntimeError, FileNotFoundError) as error:
        print(f"ros_bench: error: {error}", file=sys.stderr)
        return 1
    print_table(options, measurement)
    results = {"options": asdict(options), "commands": asdict(measurement.commands),
               "node_diagnostics": measurement.diagnostics, "late": [asdict(late) for late in measurement.late],
               "late_without_stall": late_without_stall(measurement),
               "machine": None if measurement.machine is None else asdict(measurement.machine)}
    write_text_atomic(output_dir / "results.json", json.dumps(results, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(BenchOptions, ros_bench, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
