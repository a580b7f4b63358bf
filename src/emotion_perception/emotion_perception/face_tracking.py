"""Per-face tracking: ids that stay the same while a face stays in view.

Why: fusion keeps one LSTM state per face and the tracker_node follows one target; both key on
Face.id, so an id must not change between frames of the same person and must not jump to
another person.  Association is a global assignment (Hungarian) on 1 - IoU, with a centroid
fallback for fast motion (boxes that no longer overlap but whose centres moved less than
``max_center_shift`` box sizes).  A track unseen for ``lost_timeout`` seconds is dropped; a face
re-appearing near its last position before that gets its old id back.  A new track is tentative
until it was seen in ``min_hits`` consecutive frames and only then gets an id and is reported:
the Haar cascade's rare one-frame false positives (measured on the moving-photo clip) would
otherwise create ids that the pan/tilt tracker might turn towards.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .face_detection import Detection, iou

__all__ = ['Track', 'FaceTracker', 'iou']


@dataclass
class Track:
    id: str
    x: float
    y: float
    w: float
    h: float
    confidence: float
    age: int                 # frames this track has been seen (1 on first sight)
    first_seen: float
    last_seen: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.w, self.h


class FaceTracker:
    """Assigns track ids ("f1", "f2", ...) to detections frame by frame."""

    def __init__(self, iou_threshold: float = 0.2, max_center_shift: float = 0.75,
                 lost_timeout: float = 1.0, id_prefix: str = 'f', min_hits: int = 2) -> None:
        if not 0.0 <= iou_threshold < 1.0:
            raise ValueError(f'iou_threshold must be in [0, 1), got {iou_threshold}')
        if max_center_shift < 0 or lost_timeout < 0:
            raise ValueError('max_center_shift and lost_timeout must be >= 0')
        if min_hits < 1:
            raise ValueError(f'min_hits must be >= 1, got {min_hits}')
        # scipy.optimize takes ~1 s to import on a cold start: imported when a tracker is built
        # (face_node's configure), not with this module (before the node's first /diagnostics).
        from scipy.optimize import linear_sum_assignment  # noqa: PLC0415 - heavy import
        self._assign = linear_sum_assignment
        self.min_hits = int(min_hits)
        self.iou_threshold, self.max_center_shift = iou_threshold, max_center_shift
        self.lost_timeout, self.id_prefix = lost_timeout, id_prefix
        self.tracks: dict[int, Track] = {}     # internal key -> track (tentative ones have id '')
        self._next_key = 0
        self._next_id = 1
        self.created = 0
        self.expired = 0
        self._last_stamp: Optional[float] = None

    def _cost(self, t: Track, d: Detection) -> float:
        """1 - IoU when overlapping enough; else 1 + normalised centre shift if small; else inf."""
        o = iou(t.box, d.box)
        if o >= self.iou_threshold:
            return 1.0 - o
        size = max(1.0, 0.5 * (t.w + t.h))
        shift = np.hypot((t.x + t.w / 2) - (d.x + d.w / 2), (t.y + t.h / 2) - (d.y + d.h / 2))
        if shift / size <= self.max_center_shift:
            return 1.0 + shift / size
        return np.inf

    def update(self, detections: Sequence[Detection], stamp: float) -> list[Track]:
        """Associate this frame's detections; returns the tracks visible in this frame.

        ``stamp`` is the frame's capture time in seconds.  A frame older than the previous one
        (reordered input) is still associated but does not expire tracks.
        """
        if self._last_stamp is None or stamp >= self._last_stamp:
            for key in [k for k, t in self.tracks.items()
                        if stamp - t.last_seen > self.lost_timeout]:
                self.expired += bool(self.tracks.pop(key).id)
            self._last_stamp = stamp
        keys = list(self.tracks)
        tracks = [self.tracks[k] for k in keys]
        matched: dict[int, Track] = {}
        if tracks and detections:
            cost = np.array([[self._cost(t, d) for d in detections] for t in tracks])
            finite = np.where(np.isfinite(cost), cost, 1e6)
            rows, cols = self._assign(finite)
            for r, c in zip(rows, cols):
                if np.isfinite(cost[r, c]):
                    matched[c] = tracks[r]
        hit = {id(t) for t in matched.values()}
        for k, t in zip(keys, tracks):          # a tentative track must be seen every frame
            if not t.id and id(t) not in hit:
                del self.tracks[k]
        visible = []
        for i, d in enumerate(detections):
            t = matched.get(i)
            if t is None:
                t = Track('', d.x, d.y, d.w, d.h, d.confidence, 0, stamp, stamp)
                self.tracks[self._next_key] = t
                self._next_key += 1
            t.x, t.y, t.w, t.h, t.confidence = d.x, d.y, d.w, d.h, d.confidence
            t.age += 1
            t.last_seen = max(t.last_seen, stamp)
            if not t.id and t.age >= self.min_hits:
                t.id = f'{self.id_prefix}{self._next_id}'
                self._next_id += 1
                self.created += 1
            if t.id:
                visible.append(t)
        return visible

    def reidentify(self, track: Track) -> str:
        """Give a confirmed track a new id (another person now stands where it was: see
        ``vision_pipeline.FacePipeline``'s ``identity_threshold``); the old id ends here.
        Returns the new id."""
        if track.id:
            self.expired += 1
            self.created += 1
            track.id = f'{self.id_prefix}{self._next_id}'
            self._next_id += 1
            track.first_seen = track.last_seen
        return track.id

    def last_frame_boxes(self) -> list[tuple[float, float, float, float]]:
        """Boxes of the tracks (tentative ones too) seen in the newest frame so far: where the
        detector's windowed scan (``scan_schedule``) looks for them in the next frame."""
        return [t.box for t in self.tracks.values() if t.last_seen == self._last_stamp]

    def confirmed(self) -> list[Track]:
        """Tracks that have an id (seen recently enough, possibly not in the last frame)."""
        return [t for t in self.tracks.values() if t.id]

    def reset(self) -> None:
        self.tracks.clear()
        self._last_stamp = None
