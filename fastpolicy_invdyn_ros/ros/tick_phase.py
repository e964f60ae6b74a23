"""Keeps a periodic control tick just after the joint state it needs arrives. Imports no ROS module.

The tick reads the newest state of a stream whose period divides the tick's (500 Hz from a robot
driver, 100 Hz ticks; or the same rate). Where the tick falls within the stream's period decides
how old that state is: from the transport delay up to the transport delay plus one stream
period, and it stays there for as long as both run at their rates. ``TickPhase`` measures the
period of the states it is given (the node gives those its ticks read: the stream's period, or the
tick's when the stream is faster; a state arriving just before a tick is just as fresh either way),
the transport delay (arrival minus stamp) and the phase of the ticks, and says how much later or
earlier the tick should come to fall due just after the states arrive, whichever is the shorter
move; the node moves its ticks' moments by that much (``PeriodicThread.shift``). When the periods do
not divide, the tick's phase wanders and nothing is proposed.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.metrics import percentiles_ms
from .tick_stats import RecentValues

MARGIN_NS = 200_000
"""Aim this long after the transport's p99, so a slow state is still waited for."""
EARLY_TOLERANCE_NS = MARGIN_NS
"""A tick this little before its aim is left alone: it still starts after the transport's p99."""
LATE_TOLERANCE_NS = 100_000
"""A tick this little after its aim is left alone: its state is at most this much older than it could be.
The tolerances keep the phase still while the transport's p99 wobbles; as it settles after the start (0.3 ms
over the first seconds here) the tick follows, since every 0.1 ms it lags is 0.1 ms on every command."""
MIN_CONCENTRATION = 0.8
"""Mean resultant length of the ticks' phases below which they wander (periods not commensurate)."""
MIN_TICKS = 50
"""Ticks since the last shift needed to judge their phase."""
MIN_STATES = 100
"""States needed to judge the stream's period and delays."""


class TickPhase:
    """Recent states' stamps and arrivals, and recent ticks' state ages, in preallocated rings.

    ``on_state`` (per message) and ``on_tick`` (per tick) do fixed work; ``shift_ns`` is for a low
    rate (diagnostics). Stamps and arrival times must come from the same clock; when they do not
    (transport delays negative or longer than a period) no shift is proposed.
    """

    def __init__(self, state_capacity: int = 5000, tick_capacity: int = 200) -> None:
        # 10 s of 500 Hz states: the aim follows the machine's load as it changes, not its spikes.
        self._transport_ns = RecentValues(state_capacity)
        self._handover_ns = RecentValues(state_capacity)
        self._stamp_steps_ns = RecentValues(state_capacity)
        self._ages_ns = RecentValues(tick_capacity)
        self._last_stamp_ns = -1

    def on_state(self, stamp_ns: int, arrival_ns: int, handled_ns: int) -> None:
        """A joint state message: its stamp, when it arrived and when it was handled (the stamps' clock)."""
        self._transport_ns.add(arrival_ns - stamp_ns)
        self._handover_ns.add(handled_ns - arrival_ns)
        self._stamp_steps_ns.add(stamp_ns - self._last_stamp_ns if self._last_stamp_ns >= 0 else np.nan)
        self._last_stamp_ns = stamp_ns

    def delays_ms(self) -> dict[str, dict[str, float]]:
        """p50 and p99 (ms) of the recent states' ``transport`` (arrival minus stamp: the sender's
        lateness and the middleware) and ``handover`` (handled minus arrival: the executor, or the tick
        that took it), for diagnostics."""
        return {name: percentiles_ms(ring.values() * 1e-9)
                for name, ring in (("transport", self._transport_ns), ("handover", self._handover_ns))}

    def on_tick(self, state_age_ns: int) -> None:
        """A tick: when it was due (its moment, not its start) minus the stamp of the newest state it read."""
        self._ages_ns.add(state_age_ns)

    def restart_ticks(self) -> None:
        """Forget the ticks' phases (after a shift they are out of date)."""
        self._ages_ns.clear()

    def shift_ns(self) -> int:
        """How much longer (negative: shorter) to make one tick period so ticks fall due just after the states
        arrive (0: leave it). The shorter way round: a tick a little past its aim comes that much earlier, not
        almost a state period later (at equal rates that longer period would make a tick late)."""
        ages, transport = self._ages_ns.values(), self._transport_ns.values()
        steps = self._stamp_steps_ns.values()
        if len(ages) < MIN_TICKS or len(transport) < MIN_STATES:
            return 0
        period = float(np.median(steps))
        low, high = np.percentile(transport, [1, 99])
        if not period > 0.0 or low < 0.0 or high >= period:
            return 0  # stamps on another clock, or arrivals spread over a whole period
        mean = np.mean(np.exp(2j * math.pi * ages / period))
        if abs(mean) < MIN_CONCENTRATION:
            return 0  # the tick's period is not a whole number of state periods: its phase wanders
        phase = (np.angle(mean) / (2.0 * math.pi)) * period
        aim = high + MARGIN_NS
        past_aim = (phase - aim) % period
        if past_aim <= LATE_TOLERANCE_NS or past_aim >= period - EARLY_TOLERANCE_NS:
            return 0
        return -int(past_aim) if past_aim < period / 2 else int(period - past_aim)

