"""Small plant models for tests and the benchmark: a servo head and a pinhole camera.

Used to check the control law end-to-end without hardware: the face has a bearing in the world,
the head lags its command (slew limit + first-order lag, like a hobby servo), and the camera turns
bearing - head angle into a pixel box with a frame latency.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Tuple


@dataclass
class ServoModel:
    """One servo axis: rate-limited first-order response to its command."""

    slew: float = math.radians(300.0)  # rad/s, the board's slew limit
    tau: float = 0.03  # s, mechanical lag of the servo
    angle: float = 0.0
    _board: float = 0.0  # the board's slewed set-point

    def step(self, command: float, dt: float) -> float:
        diff = command - self._board
        lim = self.slew * dt
        self._board += max(-lim, min(lim, diff))
        self.angle += (self._board - self.angle) * (1.0 - math.exp(-dt / self.tau))
        return self.angle


@dataclass
class CameraModel:
    """Pinhole camera on the pan axis: world bearing -> normalised image error, with latency."""

    hfov: float = math.radians(60.0)
    width: int = 640
    height: int = 480
    latency: float = 0.033
    _queue: Deque[Tuple[float, float]] = field(default_factory=deque)

    def error_x(self, face_bearing: float, head_pan: float) -> float:
        """Normalised x error (+ = right) of a face at `face_bearing` (REP-103: + = left)."""
        rel = face_bearing - head_pan
        return -math.tan(rel) / math.tan(self.hfov / 2.0)

    def box(self, error_x: float, size: float = 80.0) -> Tuple[float, float, float, float]:
        """A face box (x, y, w, h) in pixels centred at error_x, vertically centred."""
        cx = (error_x + 1.0) / 2.0 * self.width
        return cx - size / 2.0, self.height / 2.0 - size / 2.0, size, size
