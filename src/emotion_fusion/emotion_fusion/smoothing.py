"""Label hysteresis: keep the published expression from flickering (no rclpy).

Why: near a decision boundary the arg-max of the fused probabilities can alternate every step,
and a robot that reacts to the label (face animation, dialogue) would twitch.  The probabilities
themselves are published unchanged (they are the model's honest output); only the label is held:

* the first step of a track takes the arg-max at once;
* the label changes when another label has been the arg-max for ``steps`` consecutive steps
  (a different challenger restarts the count), or
* at once when the challenger leads the held label by at least ``margin`` (a clear change should
  not wait).

``steps = 1`` turns the hysteresis off; ``margin = 1`` turns the fast path off.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ['LabelHysteresis']


class LabelHysteresis:
    """Per-track held label index, updated once per output step."""

    def __init__(self, steps: int, margin: float) -> None:
        if int(steps) < 1:
            raise ValueError(f'hysteresis steps must be >= 1, got {steps}')
        if not 0.0 < float(margin) <= 1.0:
            raise ValueError(f'hysteresis margin must be in (0, 1], got {margin}')
        self.steps = int(steps)
        self.margin = float(margin)
        self.current: Optional[int] = None
        self._challenger: Optional[int] = None
        self._count = 0
        self.changes = 0

    def update(self, probs: np.ndarray) -> int:
        """Feed one step's probabilities; return the index of the label to publish."""
        p = np.asarray(probs, dtype=np.float64).reshape(-1)
        top = int(np.argmax(p))
        if self.current is None or self.current >= p.size:
            self._set(top)
            return top
        if top == self.current:
            self._challenger, self._count = None, 0
            return self.current
        if p[top] - p[self.current] >= self.margin:
            self._set(top)
            return top
        if top == self._challenger:
            self._count += 1
        else:
            self._challenger, self._count = top, 1
        if self._count >= self.steps:
            self._set(top)
        return self.current

    def _set(self, index: int) -> None:
        if self.current is not None and index != self.current:
            self.changes += 1
        self.current = index
        self._challenger, self._count = None, 0

    def reset(self) -> None:
        self.current, self._challenger, self._count = None, None, 0
