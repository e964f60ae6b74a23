"""Accuracy and smoothness metrics for action sequences, and latency percentiles."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import numpy.ma  # noqa: F401 - np.percentile imports it on its first call (8 ms): at start, not in a tick


def action_mse(predicted: np.ndarray, target: np.ndarray, action_std: np.ndarray) -> float:
    """Mean squared error in normalized units.

    MSE = mean over samples t and dims i of ((pred_ti - target_ti) / std_i)^2, with ``std`` the
    training set's per-dimension action std, so 1.0 is what predicting the mean action scores.
    """
    return float(np.mean(((np.asarray(predicted) - np.asarray(target)) / np.asarray(action_std)) ** 2))


def rms_jerk(actions: np.ndarray) -> float:
    """Root mean square of the third difference of a (T, A) action sequence, per control step.

    j_t = a_{t+3} - 3 a_{t+2} + 3 a_{t+1} - a_t;  RMS jerk = sqrt(mean over t, i of j_ti^2).
    Per step (not divided by dt^3) so sequences at the same rate compare directly; in action units.
    """
    actions = np.asarray(actions, dtype=np.float64)
    if len(actions) < 4:
        raise ValueError("rms_jerk needs at least 4 steps")
    return float(np.sqrt(np.mean(np.diff(actions, n=3, axis=0) ** 2)))


def sparc(profile: np.ndarray, sample_rate: float, cutoff_hz: float = 10.0, amplitude_threshold: float = 0.05,
          padding_level: int = 4) -> float:
    """Spectral arc length (SPARC, Balasubramanian et al. 2015) of a 1-D movement profile.

    With V(f) the magnitude spectrum of the zero-padded profile normalized by its maximum (the
    DC component for a non-negative profile) and the band [0, f_c] where f_c is the highest frequency below ``cutoff_hz``
    at which V still exceeds ``amplitude_threshold``:

        SPARC = -integral_0^f_c sqrt((1 / f_c)^2 + (dV/df)^2) df

    Values are negative; closer to 0 is smoother (a single bell-shaped profile scores about
    -1.5, a chattering one far lower). A constant-zero profile has no movement and returns 0.
    """
    profile = np.asarray(profile, dtype=np.float64)
    n_fft = int(2 ** (np.ceil(np.log2(len(profile))) + padding_level))
    spectrum = np.abs(np.fft.rfft(profile, n_fft))
    if spectrum.max() <= 0.0:
        return 0.0
    spectrum /= spectrum.max()
    freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    in_band = freqs <= cutoff_hz
    freqs, spectrum = freqs[in_band], spectrum[in_band]
    above = np.nonzero(spectrum >= amplitude_threshold)[0]
    freqs, spectrum = freqs[: above[-1] + 1], spectrum[: above[-1] + 1]
    if len(freqs) < 2:
        return 0.0
    arc = np.sqrt((np.diff(freqs) / (freqs[-1] - freqs[0])) ** 2 + np.diff(spectrum) ** 2)
    return float(-arc.sum())


def action_sparc(actions: np.ndarray, dt: float) -> float:
    """SPARC of a (T, A) command sequence: of its rate-of-change magnitude ``||a_{t+1} - a_t|| / dt``.

    The rate plays the part the speed profile plays for a movement: it is bell-shaped for a
    smooth command change and spiky for a chattering one.
    """
    rate = np.linalg.norm(np.diff(np.asarray(actions, dtype=np.float64), axis=0), axis=1) / dt
    return sparc(rate, 1.0 / dt)


def percentiles_ms(durations_s: np.ndarray | list[float]) -> dict[str, float]:
    """p50 and p99 of durations given in seconds, in milliseconds."""
    values = np.asarray(durations_s, dtype=np.float64) * 1e3
    if values.size == 0:
        return {"p50": float("nan"), "p99": float("nan")}
    p50, p99 = np.percentile(values, [50, 99])  # one partition for both
    return {"p50": float(p50), "p99": float(p99)}


def measure_latency(call: Callable[[], object], iterations: int, warmup: int = 20,
                    period_s: float = 0.0) -> np.ndarray:
    """Wall-clock durations (seconds) of ``iterations`` calls after ``warmup`` untimed ones; the timed
    calls start ``period_s`` apart, as from a timer (0: back to back)."""
    for _ in range(warmup):
        call()
    durations = np.empty(iterations)
    next_start = time.perf_counter()
    for i in range(iterations):
        next_start += period_s
        time.sleep(max(0.0, next_start - time.perf_counter()))
        started = time.perf_counter()
        call()
        durations[i] = time.perf_counter() - started
    return durations


def late_gaps(times_s: np.ndarray, period_s: float) -> list[tuple[float, float]]:
    """Each event more than one period late among ``times_s`` (any order): (its time from the first event, the
    interval before it), both in seconds; when they come is what tells a periodic stall from the host's."""
    ordered = np.sort(times_s)
    gaps = np.diff(ordered)
    return [(float(ordered[i + 1] - ordered[0]), float(gaps[i])) for i in np.flatnonzero(gaps > 2.0 * period_s)]
