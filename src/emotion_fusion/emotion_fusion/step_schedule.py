"""When fusion_node runs a fusion step: on vision arrival (rate-limited) and on a fallback timer.

Why event-driven: with a fixed-rate timer alone a camera frame waits up to one timer period
(100 ms at 10 Hz) before its Emotion is published.  With ``step_on_vision`` a step runs as soon as
a vision feature is accepted, so the output follows the camera; ``max_step_rate_hz`` bounds the
step rate (and so the CPU and the output rate) when frames or faces arrive faster.  The
``output_rate_hz`` timer stays as the fallback for output that no frame triggers (audio-only
output while no face is visible, steady output when the camera stalls) and skips its step while
vision-triggered steps keep coming.

Rules (all times on the node clock, passed in so tests control them; no rclpy here):

* ``vision(now)``: a step may run now if no vision-triggered step ran in the last
  ``min_spacing``; otherwise the feature is *pending* and ``due_ns`` says when it may be fused
  (that step + ``min_spacing``).  The node arms a one-shot timer for that instant; a timer step or
  a later vision step before it fuses the pending feature too (every step uses every buffered
  feature).  Timer steps do not count for the spacing: they run only after a period without
  vision steps, and counting them would delay the first frame after a stall by up to a spacing
  and lock the following steps to the timer's phase instead of the camera's.
* ``deferred(now)``: the one-shot timer fired: step if a feature is still pending (a deferred
  step counts as vision-triggered).
* ``timer(now)``: the fallback timer fired: step unless a vision-triggered step ran in the last
  ``timer_period``.  Only vision-triggered steps count: the timer's own previous step is one period
  ago by construction, and counting it would make the timer skip ticks on callback jitter.
* ``ran(now, by_vision)``: record a step.
* With ``step_on_vision`` false, ``vision`` never steps and ``timer`` always does (the old
  fixed-rate behaviour).

A clock that goes backwards (simulated time restarted) counts as "long enough ago".
"""
from __future__ import annotations

from typing import Optional

__all__ = ['StepSchedule']


class StepSchedule:
    def __init__(self, step_on_vision: bool, min_spacing_ns: int, timer_period_ns: int) -> None:
        if min_spacing_ns <= 0 or timer_period_ns <= 0:
            raise ValueError('min_spacing_ns and timer_period_ns must be > 0')
        self.step_on_vision = bool(step_on_vision)
        self.min_spacing_ns = int(min_spacing_ns)
        self.timer_period_ns = int(timer_period_ns)
        self.last_step_ns: Optional[int] = None     # any step
        self.last_vision_step_ns: Optional[int] = None
        self.pending = False                        # an accepted vision feature not yet fused
        # counters (diagnostics)
        self.vision_steps = 0
        self.timer_steps = 0
        self.timer_skips = 0
        self.deferrals = 0

    @staticmethod
    def _within(now_ns: int, since: Optional[int], window_ns: int) -> bool:
        return since is not None and 0 <= now_ns - since < window_ns

    def vision(self, now_ns: int) -> bool:
        """A vision feature was accepted: True = run a step now (then call ``ran``)."""
        if not self.step_on_vision:
            return False
        if self._within(now_ns, self.last_vision_step_ns, self.min_spacing_ns):
            if not self.pending:
                self.deferrals += 1
            self.pending = True
            return False
        return True

    @property
    def due_ns(self) -> Optional[int]:
        """When the pending feature may be fused (None: nothing pending)."""
        if not self.pending or self.last_vision_step_ns is None:
            return None
        return self.last_vision_step_ns + self.min_spacing_ns

    def deferred(self, now_ns: int) -> bool:
        """The one-shot timer for a pending feature fired: True = run a step now."""
        return self.pending and not self._within(now_ns, self.last_vision_step_ns,
                                                 self.min_spacing_ns)

    def timer(self, now_ns: int) -> bool:
        """The fallback timer fired: True = run a step now."""
        if self.step_on_vision and self._within(now_ns, self.last_vision_step_ns,
                                                self.timer_period_ns):
            self.timer_skips += 1
            return False
        return True

    def ran(self, now_ns: int, by_vision: bool) -> None:
        """A step ran at ``now_ns`` (it fused every buffered feature, so nothing is pending)."""
        self.last_step_ns = now_ns
        self.pending = False
        if by_vision:
            self.last_vision_step_ns = now_ns
            self.vision_steps += 1
        else:
            self.timer_steps += 1
