"""RecentCount: how much a total grew lately, the basis of the nodes' non-sticky WARN levels."""
from __future__ import annotations

from emotion_runtime.stats import RecentCount, RecentCounts


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_growth_counts_within_the_window_then_clears():
    clock = Clock()
    c = RecentCount(10.0, clock)
    clock.t = 1.0
    assert c.update(0) == 0
    clock.t = 2.0
    assert c.update(3) == 3                 # 3 events since the start
    for t in range(3, 12):                  # reported every second, no new events
        clock.t = float(t)
        assert c.update(3) == 3, t
    clock.t = 12.0                          # the events are now more than 10 s old
    assert c.update(3) == 0
    clock.t = 13.0
    assert c.update(5) == 2                 # new events raise it again


def test_events_before_the_first_report_count_and_a_reset_counter_is_new():
    clock = Clock()
    c = RecentCount(5.0, clock)
    clock.t = 3.0
    assert c.update(4) == 4
    clock.t = 4.0
    assert c.update(1) == 1                 # counter went back (restarted): all of it is new


def test_recent_counts_keeps_one_window_per_key():
    clock = Clock()
    recent = RecentCounts(2.0, clock)
    clock.t = 1.0
    assert recent('a', 2) == 2 and recent('b', 0) == 0
    clock.t = 4.0
    recent('a', 2)
    clock.t = 5.0
    assert recent('a', 2) == 0 and recent('b', 1) == 1
