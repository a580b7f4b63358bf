"""Counters for the nodes' /diagnostics: message rate, processing latency, drops, model status.

Why rclpy-free: the same meters are used by bench/bench_perception.py and by unit tests, and the
nodes only turn a ``StatusReport`` into a diagnostic_msgs/DiagnosticStatus (see ros_common).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

__all__ = ['RateMeter', 'LatencyMeter', 'RecentCount', 'RecentCounts', 'StatusReport', 'OK',
           'WARN', 'ERROR', 'STALE', 'RECENT_WINDOW_S']

# diagnostic_msgs/DiagnosticStatus levels (bytes in the message; ints here).
OK, WARN, ERROR, STALE = 0, 1, 2, 3

# How long a counted event (a rejected input, a dropped frame, ...) keeps a node's diagnostics at
# WARN: levels follow what happened lately, totals stay in the values.
RECENT_WINDOW_S = 10.0


class RateMeter:
    """Events per second over a sliding window of ``window`` seconds (thread-safe)."""

    def __init__(self, window: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window, self._clock = window, clock
        self._times: deque = deque()
        self._lock = threading.Lock()
        self.total = 0

    def tick(self) -> None:
        with self._lock:
            now = self._clock()
            self._times.append(now)
            self.total += 1
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()

    def rate(self) -> float:
        with self._lock:
            self._trim(self._clock())
            return len(self._times) / self.window


class RecentCount:
    """How much a running total grew within the last ``window`` seconds.

    Fed the total itself (``update(total)``, e.g. from a node's ``report()``), so the code that
    counts needs no change; the growth since construction counts until it is ``window`` old.
    """

    def __init__(self, window: float = RECENT_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window, self._clock = window, clock
        self._samples: deque = deque([(clock(), 0)])
        self._lock = threading.Lock()

    def update(self, total: float) -> float:
        with self._lock:
            now = self._clock()
            self._samples.append((now, total))
            # keep the newest sample that is at least `window` old as the baseline
            while len(self._samples) > 1 and now - self._samples[1][0] >= self.window:
                self._samples.popleft()
            base = self._samples[0][1]
            return total - base if total >= base else total   # a reset counter: all new


class RecentCounts:
    """One RecentCount per key: ``recent('rejected', self.rejected)`` -> growth in the window."""

    def __init__(self, window: float = RECENT_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window, self._clock = window, clock
        self._counts: dict = {}

    def __call__(self, key: str, total: float) -> float:
        if key not in self._counts:
            self._counts[key] = RecentCount(self.window, self._clock)
        return self._counts[key].update(total)


class LatencyMeter:
    """The last ``size`` durations (seconds); reported as p50/p95/max in milliseconds."""

    def __init__(self, size: int = 200) -> None:
        self._values: deque = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._values.append(float(seconds))

    def summary_ms(self) -> dict[str, float]:
        with self._lock:
            v = np.asarray(self._values, np.float64)
        if v.size == 0:
            return {}
        return {'p50_ms': float(np.percentile(v, 50) * 1e3),
                'p95_ms': float(np.percentile(v, 95) * 1e3), 'max_ms': float(v.max() * 1e3)}


@dataclass
class StatusReport:
    """One DiagnosticStatus worth of facts: the worst level wins, messages are joined."""

    level: int = OK
    messages: list = field(default_factory=list)
    values: dict = field(default_factory=dict)

    def add(self, key: str, value: object) -> None:
        if isinstance(value, float):
            value = f'{value:.3f}'
        self.values[key] = str(value)

    def raise_level(self, level: int, message: str) -> None:
        self.level = max(self.level, level)
        self.messages.append(message)

    @property
    def message(self) -> str:
        return '; '.join(self.messages) if self.messages else 'ok'

    def latency(self, name: str, meter: LatencyMeter) -> None:
        for k, v in meter.summary_ms().items():
            self.add(f'{name} {k}', v)

    def model(self, error: Optional[str], level_if_missing: int = ERROR) -> None:
        """'model' = 'ok' or the load error (which also raises the level)."""
        if error:
            self.add('model', f'error: {error}')
            self.raise_level(level_if_missing, 'model not loaded')
        else:
            self.add('model', 'ok')
