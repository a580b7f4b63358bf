"""fusion_node's decisions without rclpy: inputs in, steps out, on a clock the caller passes in.

Why an object of its own: the node and the offline replay (``emotion-eval bag``) must step the
same way, so that what the replay scores is what the robot publishes.  ``FusionRunner`` owns the
``FusionEngine`` (alignment, tracks, hysteresis) and the ``StepSchedule`` (when a step runs), and
decides everything the node's callbacks used to decide: whether a vision arrival steps now or is
deferred, when the one-shot for a deferred feature is due, whether a fallback-timer tick steps,
which tracks were removed, and which estimates use their input for the first time (latency).
Every entry point takes the time (ns on the caller's clock); none reads a clock.

The caller owns the timers:

* the fallback timer: call ``on_timer(now)`` every ``timer_period_ns``;
* the one-shot for a deferred vision feature: after any call, ``deferred_due_ns`` is the time it
  must fire (None: not armed).  Call ``on_deferred(now)`` then; it may arm it again.  Arming is
  what fusion_node always did: at the pending feature's due time, at least 1 us ahead, and not
  again while armed (a step before it leaves it armed; it then finds nothing to do).

fusion_node converts messages and calls these from its callbacks and ROS timers;
``emotion_training.eval_bag.OfflinePipeline`` calls them at the bag's stamps, at the instants the
node's timers would fire.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from .config import FusionConfig
from .features import Feature
from .fusion_engine import EmotionEstimate, FaceBox, FusionEngine
from .step_schedule import StepSchedule

__all__ = ['Step', 'FusionRunner', 'MIN_ONE_SHOT_NS']

NS = 1_000_000_000
MIN_ONE_SHOT_NS = 1000     # a one-shot is armed at least this far ahead (a zero period would spin)


@dataclass
class Step:
    """One fusion step: what to publish, and what the node's bookkeeping needs."""

    t_ns: int                                   # when it ran (the caller's clock)
    kind: str                                   # 'vision' | 'deferred' | 'timer'
    estimates: List[EmotionEstimate] = field(default_factory=list)
    removed: List[str] = field(default_factory=list)    # track ids gone: drop their publishers
    error: Optional[str] = None                 # the model call failed: why
    compute_s: float = 0.0                      # wall time of the model call
    first_use: List[EmotionEstimate] = field(default_factory=list)
    """The estimates whose newest input is used for the first time (a held input's age is not
    pipeline latency): input-to-publish latency = publish time - ``received_ns``."""


class FusionRunner:
    """FusionEngine + StepSchedule, driven by arrivals and timer calls with explicit times."""

    def __init__(self, cfg: FusionConfig, model: Any = None, voice_window_s: float = 0.0) -> None:
        self.cfg = cfg
        self.engine = FusionEngine(cfg, model, voice_window_s=voice_window_s)
        self.schedule = StepSchedule(cfg.step_on_vision, int(round(NS / cfg.max_step_rate_hz)),
                                     int(round(NS / cfg.output_rate_hz)))
        self.timer_period_ns = int(round(NS / cfg.output_rate_hz))
        self.deferred_due_ns: Optional[int] = None    # the armed one-shot's time (None: idle)
        self._first_use: Dict[str, int] = {}

    # ------------------------------------------------------------------ inputs
    def on_vision(self, feature: Feature, now_ns: int) -> tuple[Optional[str], Optional[Step]]:
        """A vision feature arrived: (reject/drop reason or None, the step it triggered)."""
        reason = self.engine.add_vision(feature, now_ns)
        if reason is not None or not self.cfg.step_on_vision:
            return reason, None
        if self.schedule.vision(now_ns):
            return None, self._step(now_ns, 'vision')
        self._arm(now_ns)
        return None, None

    def on_voice(self, feature: Feature, now_ns: int) -> Optional[str]:
        """A voice feature arrived (never steps): the reject/drop reason or None."""
        return self.engine.add_voice(feature, now_ns)

    def on_faces(self, boxes: Sequence[FaceBox], now_ns: int, stamp_ns: Optional[int] = None,
                 ids: Optional[Sequence[str]] = None) -> None:
        """A FaceArray arrived: box sizes for the ``largest`` voice policy and, with its
        frame's ``stamp_ns``, the ids in view (``ids``, else the boxes'; ``faces_in_view_only``)."""
        self.engine.set_faces([b for b in boxes if b.face_id], now_ns, stamp_ns,
                              None if ids is None else [i for i in ids if i])

    def on_tracker(self, target_id: str, now_ns: int) -> None:
        """A TrackerState arrived (the ``target`` voice policy)."""
        self.engine.set_target(target_id, now_ns)

    # ------------------------------------------------------------------ timers
    def on_timer(self, now_ns: int) -> Optional[Step]:
        """The output_rate_hz fallback timer fired: a step unless a vision step ran within a
        period."""
        return self._step(now_ns, 'timer') if self.schedule.timer(now_ns) else None

    def on_deferred(self, now_ns: int) -> Optional[Step]:
        """The one-shot fired: fuse the pending vision feature unless a step did it already (a
        newer step moved the due time: the one-shot is armed again for that)."""
        self.deferred_due_ns = None
        if self.schedule.deferred(now_ns):
            return self._step(now_ns, 'deferred')
        self._arm(now_ns)
        return None

    def _arm(self, now_ns: int) -> None:
        due = self.schedule.due_ns
        if due is None or self.deferred_due_ns is not None:
            return
        self.deferred_due_ns = now_ns + max(due - now_ns, MIN_ONE_SHOT_NS)

    # ------------------------------------------------------------------ the step
    def _step(self, now_ns: int, kind: str) -> Step:
        self.schedule.ran(now_ns, by_vision=kind != 'timer')
        result = self.engine.step(now_ns)
        step = Step(now_ns, kind, result.estimates, result.removed, result.error,
                    result.compute_s)
        for fid in result.removed:
            self._first_use.pop(fid, None)
        for est in result.estimates:
            if est.received_ns and self._first_use.get(est.face_id) != est.received_ns:
                self._first_use[est.face_id] = est.received_ns
                step.first_use.append(est)
        return step
