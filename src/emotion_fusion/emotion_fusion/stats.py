"""Small bookkeeping for diagnostics and logs: recent timings, per-kind log throttling.

Why per-kind throttling instead of rclpy's ``throttle_duration_sec``: rclpy throttles per call
site, so one "input rejected" line would hide a different reason (a NaN flood would mask a wrong
embedding size from another node).  Time is passed in so tests need no clock.
"""
from __future__ import annotations

from collections import deque
from typing import Deque, Dict, Optional

import numpy as np

__all__ = ['LogThrottle', 'RecentSamples']   # rates: emotion_runtime.stats.RateMeter


class LogThrottle:
    """Allow one message per key per ``period_s``; count what was suppressed meanwhile."""

    def __init__(self, period_s: float) -> None:
        self.period_s = float(period_s)
        self._last: Dict[str, float] = {}
        self._suppressed: Dict[str, int] = {}

    def allow(self, key: str, now_s: float) -> Optional[int]:
        """None = stay quiet; else the number of messages suppressed since the last one."""
        last = self._last.get(key)
        if last is not None and now_s - last < self.period_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        self._last[key] = now_s
        return self._suppressed.pop(key, 0)


class RecentSamples:
    """The last ``size`` samples of a figure (e.g. step time), for mean / max / percentiles."""

    def __init__(self, size: int = 200) -> None:
        self._values: Deque[float] = deque(maxlen=size)

    def add(self, value: float) -> None:
        self._values.append(float(value))

    def __len__(self) -> int:
        return len(self._values)

    def summary(self) -> Dict[str, float]:
        if not self._values:
            return {'mean': float('nan'), 'p95': float('nan'), 'max': float('nan')}
        a = np.fromiter(self._values, float)
        return {'mean': float(a.mean()), 'p95': float(np.percentile(a, 95)),
                'max': float(a.max())}
