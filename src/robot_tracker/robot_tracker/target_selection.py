"""Which face to look at: largest, most confident, or a locked track id, with hysteresis.

Hysteresis matters because two similar faces would otherwise make the head hop between them on
every frame; the current target is kept until a rival scores clearly better.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from emotion_runtime.face_boxes import face_box_problem

POLICIES = ('largest', 'confident', 'locked')


@dataclass(frozen=True)
class FaceObs:
    """A face reduced to what the tracker needs (rclpy-free copy of emotion_msgs/Face)."""

    id: str
    error_x: float  # normalised horizontal offset of the box centre, [-1, 1], + = right of centre
    error_y: float  # normalised vertical offset, [-1, 1], + = below centre
    area: float  # box area as a fraction of the image, (0, 1]
    confidence: float


def face_box_reason(x: float, y: float, width: float, height: float, image_width: int,
                    image_height: int, confidence: float) -> Optional[str]:
    """Why a box cannot be used (emotion_runtime.face_boxes reasons: ``bad_image_size``,
    ``non_finite_box``, ``empty_box``, ``box_outside_image``, ``non_finite_confidence``), or
    None when it can."""
    return face_box_problem(x, y, width, height, image_width, image_height, confidence)


def face_from_box(face_id: str, x: float, y: float, width: float, height: float,
                  image_width: int, image_height: int, confidence: float) -> Optional[FaceObs]:
    """Normalise a pixel box; None for boxes that cannot be used (``face_box_reason`` says
    why: zero image size, NaN/inf, empty or negative size, outside the image)."""
    if face_box_reason(x, y, width, height, image_width, image_height, confidence) is not None:
        return None
    cx = (x + width / 2.0) / image_width
    cy = (y + height / 2.0) / image_height
    ex = max(-1.0, min(1.0, 2.0 * cx - 1.0))
    ey = max(-1.0, min(1.0, 2.0 * cy - 1.0))
    area = min(1.0, (width * height) / float(image_width * image_height))
    return FaceObs(face_id, ex, ey, area, confidence)


class TargetSelector:
    """Stateful selector; call select() once per FaceArray."""

    def __init__(self, policy: str = 'largest', locked_id: str = '', hysteresis: float = 0.3,
                 min_confidence: float = 0.3) -> None:
        if policy not in POLICIES:
            raise ValueError(f'selection policy {policy!r} not one of {POLICIES}')
        if hysteresis < 0.0:
            raise ValueError('hysteresis must be >= 0')
        self.policy = policy
        self.locked_id = locked_id
        self.hysteresis = hysteresis
        self.min_confidence = min_confidence
        self.current_id: Optional[str] = None

    def _score(self, f: FaceObs) -> float:
        return f.confidence if self.policy == 'confident' else f.area

    def reset(self) -> None:
        """Forget the current target (e.g. after it was lost)."""
        self.current_id = None

    def select(self, faces: Sequence[FaceObs]) -> Optional[FaceObs]:
        """Return the face to track, or None."""
        usable = [f for f in faces if f.confidence >= self.min_confidence]
        if self.policy == 'locked':
            for f in usable:
                if f.id == self.locked_id:
                    self.current_id = f.id
                    return f
            self.current_id = None
            return None
        if not usable:
            self.current_id = None
            return None
        best = max(usable, key=self._score)
        if self.current_id:
            current = next((f for f in usable if f.id == self.current_id), None)
            if current is not None and self._score(best) <= self._score(current) * (1.0 + self.hysteresis):
                return current
        self.current_id = best.id or None
        return best
