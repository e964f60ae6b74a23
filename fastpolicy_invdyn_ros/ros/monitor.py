"""A monitor of the policy's commands across processes: rate, state-to-command latency, jerk, diagnostics."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import JointState

from ..core.metrics import late_gaps, percentiles_ms, rms_jerk


@dataclass
class CommandStats:
    """What a ``CommandMonitor`` saw over a run."""

    count: int
    """Commands received."""
    rate_hz: float
    """Commands per second, first to last."""
    latency_ms: dict[str, float]
    """State-to-command latency p50/p99 (ms): the command's arrival here minus the stamp of the joint
    state it was computed from, both on this machine's clock; over the commands computed from a state
    newer than the previous command's (a safe command on stale input answers no new state)."""
    sent_latency_ms: dict[str, float]
    """The same up to the command's sending (its DDS source timestamp): the part spent before the
    policy's publish (the simulator's, the state's transport, the wait for the tick, the tick); the
    rest of ``latency_ms`` is the command's transport."""
    late_ticks: int
    """Commands sent more than one period late (more than two periods after the previous one)."""
    late_at: list[tuple[float, float]]
    """Each of those: when it was sent (s after the first command) and the interval before it (s)."""
    jerk: float
    """RMS jerk of the commands (action units per step^3, ``metrics.rms_jerk``)."""


class CommandMonitor(Node):
    """Records the policy's ``command_stamped`` (arrival times, the states' stamps, send times, commands)
    and keeps its latest diagnostics."""

    def __init__(self, topic: str = "/invdyn_policy/command_stamped") -> None:
        super().__init__("command_monitor")
        self.recording = True
        self.received_ns: list[int] = []
        self.stamp_ns: list[int] = []
        self.sent_ns: list[int] = []
        self.commands: list[tuple[float, ...]] = []
        self.diagnostics: dict[str, str] = {}
        """The policy's last diagnostic values (key -> value)."""
        self.create_subscription(JointState, topic, self._on_command, 100)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("invdyn_policy"):
                self.diagnostics = {value.key: value.value for value in status.values}

    def _on_command(self, msg: JointState, info: MessageInfo) -> None:
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        if not self.recording or stamp_ns == 0:  # 0: computed before any joint state arrived
            return
        self.received_ns.append(info["received_timestamp"])
        self.stamp_ns.append(stamp_ns)
        self.sent_ns.append(info["source_timestamp"])
        # The command is in the field of its interface; the other two are empty.
        self.commands.append(tuple(msg.effort or msg.position or msg.velocity))

    def clear(self) -> None:
        for values in (self.received_ns, self.stamp_ns, self.sent_ns, self.commands):
            values.clear()

    def stats(self, period_s: float) -> CommandStats:
        received, sent = np.array(self.received_ns), np.array(self.sent_ns)
        duration_s = (received[-1] - received[0]) * 1e-9
        stamps = np.array(self.stamp_ns)
        fresh = np.concatenate(([True], np.diff(stamps) > 0))
        late = late_gaps(sent * 1e-9, period_s)
        return CommandStats(
            count=len(received),
            rate_hz=(len(received) - 1) / duration_s,
            latency_ms=percentiles_ms((received[fresh] - stamps[fresh]) * 1e-9),
            sent_latency_ms=percentiles_ms((sent[fresh] - stamps[fresh]) * 1e-9),
            late_ticks=len(late),
            late_at=late,
            jerk=rms_jerk(np.array(self.commands)),
        )
