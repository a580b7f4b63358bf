"""What the head does when the target is lost: hold, then sweep, then go home.

Holding first avoids reacting to one-frame dropouts; the sweep starts towards the side the face
was last seen on, since that is where it most likely went.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Optional, Tuple


class Mode(IntEnum):
    """Mirrors emotion_msgs/TrackerState MODE_* values."""

    IDLE = 0
    TRACKING = 1
    HOLDING = 2
    SEARCHING = 3
    FAULT = 4


@dataclass
class SearchConfig:
    """Timing and shape of the lost-target behaviour (angles in rad)."""

    hold_time: float = 1.0
    search_time: float = 8.0
    pan_amplitude: float = math.radians(60.0)
    period: float = 6.0
    tilt: float = 0.0
    home: Tuple[float, float] = (0.0, 0.0)

    def validate(self) -> None:
        """Raise ValueError for impossible settings."""
        if self.hold_time < 0 or self.search_time < 0:
            raise ValueError('hold_time and search_time must be >= 0')
        if self.period <= 0:
            raise ValueError('search period must be > 0')
        if not 0 <= self.pan_amplitude <= math.pi / 2:
            raise ValueError('search pan amplitude must be in [0, 90] deg')


class LostTargetBehaviour:
    """State machine: call lost() once when the target disappears, then update() every step."""

    def __init__(self, cfg: SearchConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        self._lost_at: Optional[float] = None
        self._start_pan = 0.0
        self._direction = 1.0
        self.mode = Mode.IDLE

    def found(self) -> None:
        """The target is (back) in view."""
        self._lost_at = None
        self.mode = Mode.TRACKING

    def lost(self, now: float, last_pan: float, last_error_x: float) -> None:
        """The target just disappeared; remember where the head was and where the face went."""
        self._lost_at = now
        self._start_pan = last_pan
        # face last seen right of centre (error_x > 0) -> sweep right first (pan decreasing)
        self._direction = -1.0 if last_error_x > 0 else 1.0
        self.mode = Mode.HOLDING

    def update(self, now: float) -> Tuple[Mode, Optional[Tuple[float, float]]]:
        """Current mode and the pose to drive to (None = hold the current command)."""
        if self._lost_at is None:
            return self.mode, None
        t = now - self._lost_at
        c = self.cfg
        if t < c.hold_time:
            self.mode = Mode.HOLDING
            return self.mode, None
        t -= c.hold_time
        if t < c.search_time and c.pan_amplitude > 0:
            self.mode = Mode.SEARCHING
            return self.mode, (self._sweep(t), c.tilt)
        self.mode = Mode.IDLE
        return self.mode, c.home

    def _sweep(self, t: float) -> float:
        """Triangle wave over [-A, A] at 4A/period rad/s, starting at the hold pan, first towards
        the side the face left by."""
        a = self.cfg.pan_amplitude
        speed = 4.0 * a / self.cfg.period
        start = max(-a, min(a, self._start_pan))
        # position along an unfolded path of length 4A per period, phase 0 at -A moving up
        s0 = start + a if self._direction > 0 else 3 * a - start
        s = (s0 + speed * t) % (4 * a)
        return -a + s if s <= 2 * a else 3 * a - s
