"""Log throttling per kind, recent-sample summaries (rates: emotion_runtime.stats)."""
import math

from emotion_fusion.stats import LogThrottle, RecentSamples


def test_throttle_is_per_key_and_counts_suppressed():
    t = LogThrottle(5.0)
    assert t.allow('nan', 0.0) == 0
    assert t.allow('nan', 1.0) is None
    assert t.allow('nan', 2.0) is None
    assert t.allow('size', 2.0) == 0          # another kind is not hidden by the first
    assert t.allow('nan', 5.0) == 2           # reports how many were swallowed


def test_recent_samples_bounded():
    s = RecentSamples(size=3)
    assert math.isnan(s.summary()['mean'])
    for v in (100.0, 1.0, 2.0, 3.0):
        s.add(v)
    assert len(s) == 3 and s.summary()['max'] == 3.0 and s.summary()['mean'] == 2.0
