"""Where the face detector looks in each frame: the whole frame now and then, otherwise only
around the faces it saw in the previous frame.

Why: a whole-frame Haar scan of a 640x480 frame costs ~20 ms on one core, nearly all of the
vision path, and most of it goes into finding, 30 times a second, that the background still
holds no face.  Around a face that was just seen, a window a few box sizes wide, searched only
at sizes near that face's own, costs a small fraction of it.  On a 2-core robot computer the
saved CPU also shortens every other node's wait (the live graph's camera -> /emotion latency).

What is not lost:
  * new faces: a whole-frame scan runs every ``full_scan_every`` frames (at 30 fps and the
    default 5, a new face is found within 1/6 s, and gets its id ``min_hits`` frames later);
  * a face the windowed scan misses (fast motion, a turn, a jump in size beyond
    ``size_range``, or the cascade's borderline votes falling differently on a cropped image):
    the same frame is scanned whole at once;
  * no face in view: every frame is a whole-frame scan, as before.
``full_scan_every = 1`` scans every whole frame (the behaviour before this module existed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

__all__ = ['ScanRegion', 'ScanSchedule']

Box = Sequence[float]   # (x, y, w, h) in full-resolution pixels


@dataclass(frozen=True)
class ScanRegion:
    """A part of the frame to search, and the face sizes to search it for (full-res pixels)."""

    x0: int
    y0: int
    x1: int
    y1: int
    min_size: float
    max_size: float

    def contains_centre(self, box: Box) -> bool:
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        return self.x0 <= cx <= self.x1 and self.y0 <= cy <= self.y1


def searchable(regions: Sequence[ScanRegion], width: int, height: int,
               min_face: float) -> list[tuple[tuple[int, int, int, int], float, float]]:
    """The regions a detector can search in a ``width`` x ``height`` frame: each as
    ((x0, y0, x1, y1) clipped to the frame, smallest face, largest face), the smallest at least
    ``min_face``; regions too small for their smallest face, or whose sizes do not overlap, are
    left out."""
    out = []
    for r in regions:
        lo, hi = max(float(min_face), float(r.min_size)), float(r.max_size)
        x0, y0 = max(0, int(r.x0)), max(0, int(r.y0))
        x1, y1 = min(width, int(math.ceil(r.x1))), min(height, int(math.ceil(r.y1)))
        if hi >= lo and min(x1 - x0, y1 - y0) >= lo:
            out.append(((x0, y0, x1, y1), lo, hi))
    return out


class ScanSchedule:
    """Plans each frame's scan (``plan``) and checks its outcome (``needs_whole_scan``)."""

    def __init__(self, full_scan_every: int = 5, search_margin: float = 1.0,
                 size_range: float = 1.5) -> None:
        if full_scan_every < 1:
            raise ValueError(f'full_scan_every must be >= 1, got {full_scan_every}')
        if search_margin < 0.1:
            raise ValueError(f'search_margin must be >= 0.1 box sizes, got {search_margin}')
        if size_range <= 1.0:
            raise ValueError(f'size_range must be > 1, got {size_range}')
        self.full_scan_every = int(full_scan_every)
        self.search_margin, self.size_range = float(search_margin), float(size_range)
        self._since_full: Optional[int] = None   # frames since the last whole-frame scan
        self.frames = 0
        self.full_scans = 0
        self.misses = 0          # windows that did not find their face again

    def plan(self, width: int, height: int, boxes: Sequence[Box]) -> Optional[list[ScanRegion]]:
        """None for a whole-frame scan, else one region per box (the faces seen last frame)."""
        self.frames += 1
        due = self._since_full is None or self._since_full + 1 >= self.full_scan_every
        if due or not boxes:
            self._since_full = 0
            self.full_scans += 1
            return None
        self._since_full += 1
        return self.windows(width, height, boxes)

    def windows(self, width: int, height: int, boxes: Sequence[Box]) -> list[ScanRegion]:
        """The search window around each box (clipped to the frame)."""
        return [self._region(b, width, height) for b in boxes]

    def _region(self, box: Box, width: int, height: int) -> ScanRegion:
        x, y, w, h = box
        side = max(w, h)
        m = self.search_margin * side
        return ScanRegion(max(0, math.floor(x - m)), max(0, math.floor(y - m)),
                          min(width, math.ceil(x + w + m)), min(height, math.ceil(y + h + m)),
                          side / self.size_range, side * self.size_range)

    def needs_whole_scan(self, regions: Optional[Sequence[ScanRegion]],
                         detections: Sequence) -> bool:
        """After a windowed scan: True when a window lost its face.  The caller then scans the
        whole of the same frame (counted here as a whole-frame scan), so no frame in which the
        whole-frame scan would have found the face goes without it."""
        if regions is None:
            return False
        missed = sum(not any(r.contains_centre(d.box) for d in detections) for r in regions)
        if not missed:
            return False
        self.misses += missed
        self.full_scans += 1
        self._since_full = 0
        return True

    @property
    def full_scan_fraction(self) -> float:
        """Share of frames scanned whole (1.0 with ``full_scan_every = 1``)."""
        return self.full_scans / self.frames if self.frames else 0.0
