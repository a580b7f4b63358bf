"""StepSchedule: when a fusion step runs (on vision, deferred, fallback timer); injected now."""
import pytest

from emotion_fusion.step_schedule import StepSchedule

MS = 1_000_000
SPACING = 33 * MS      # max_step_rate_hz ~ 30
PERIOD = 100 * MS      # output_rate_hz 10


def sched(on_vision=True):
    return StepSchedule(on_vision, SPACING, PERIOD)


def test_first_vision_steps_at_once():
    s = sched()
    assert s.vision(1000 * MS)
    s.ran(1000 * MS, by_vision=True)
    assert not s.pending and s.vision_steps == 1


def test_vision_within_spacing_is_deferred_to_end_of_spacing():
    s = sched()
    t = 1000 * MS
    s.ran(t, by_vision=True)
    assert not s.vision(t + 10 * MS)
    assert s.pending and s.due_ns == t + SPACING and s.deferrals == 1
    assert not s.vision(t + 20 * MS)          # still the same deferral
    assert s.deferrals == 1
    assert not s.deferred(t + SPACING - 1)     # one-shot too early (jitter): no step
    assert s.deferred(t + SPACING)
    s.ran(t + SPACING, by_vision=True)
    assert not s.pending and s.due_ns is None


def test_vision_after_spacing_steps_and_clears_pending():
    s = sched()
    t = 1000 * MS
    s.ran(t, by_vision=True)
    assert not s.vision(t + 5 * MS)
    assert s.vision(t + SPACING)               # exactly the spacing is enough
    s.ran(t + SPACING, by_vision=True)
    assert not s.pending
    assert not s.deferred(t + SPACING + 1)     # the one-shot then finds nothing to do


def test_spacing_bounds_the_step_rate():
    s = sched()
    steps = []
    for k in range(1000):                      # a feature every 1 ms for 1 s
        now = 1000 * MS + k * MS
        if s.vision(now) or s.deferred(now):
            s.ran(now, by_vision=True)
            steps.append(now)
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    assert min(gaps) >= SPACING
    assert len(steps) == 1 + 999 // 33


def test_timer_step_does_not_delay_vision_step():
    s = sched()
    t = 1000 * MS
    s.ran(t, by_vision=False)
    assert s.vision(t + 1 * MS)                # first frame after a stall: at once


def test_timer_skips_while_vision_steps_run():
    s = sched()
    t = 1000 * MS
    s.ran(t, by_vision=True)
    assert not s.timer(t + 1 * MS)
    assert not s.timer(t + PERIOD - 1)
    assert s.timer_skips == 2
    assert s.timer(t + PERIOD)                 # vision stalled for a period: timer steps


def test_timer_not_skipped_by_its_own_previous_step():
    s = sched()
    t = 1000 * MS
    s.ran(t, by_vision=False)
    assert s.timer(t + PERIOD - 5 * MS)        # early tick (jitter) still steps
    assert s.timer_skips == 0


def test_timer_step_fuses_pending_feature():
    s = sched()
    t = 1000 * MS
    s.ran(t, by_vision=True)
    assert not s.vision(t + 1 * MS)
    s.ran(t + 2 * MS, by_vision=False)         # e.g. a timer step in between
    assert not s.pending and not s.deferred(t + SPACING + 2 * MS)


def test_step_on_vision_false_is_timer_only():
    s = sched(on_vision=False)
    t = 1000 * MS
    assert not s.vision(t)
    assert not s.pending
    s.ran(t, by_vision=False)
    assert s.timer(t + 1)                      # never skipped
    assert s.timer_skips == 0


def test_clock_going_backwards_does_not_block():
    s = sched()
    s.ran(1000 * MS, by_vision=True)
    assert s.vision(10 * MS)
    assert s.timer(10 * MS)


@pytest.mark.parametrize('spacing,period', [(0, PERIOD), (SPACING, 0)])
def test_bad_periods_refused(spacing, period):
    with pytest.raises(ValueError):
        StepSchedule(True, spacing, period)
