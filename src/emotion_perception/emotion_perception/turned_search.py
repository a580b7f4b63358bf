"""Face detection on turned copies of the frame, for faces tilted in the image plane.

Why: MTCNN (and the Haar cascade even more) is trained on upright faces; on frames built from
FER2013 dev faces it misses a face tilted by 30 deg twice as often as an upright one, and on the
dev bags of ``emotion-bag make`` most of the faces it never finds are heads leaning to one side
(src/emotion_perception/README.md, "Turned faces (measured)").  Searching a copy of the frame
turned by +-``angle`` finds many of them, and their five landmarks, mapped back into the frame,
carry the tilt, so the aligned crop (``face_alignment``) turns them upright for the encoder.

Cost is kept at one pass per frame where it matters:
  * a whole-frame scan (``regions`` None) uses one angle per call, in the cycle
    upright, +angle, upright, -angle: an upright face is found at most one scan later than
    without this, a turned one within four scans, and a whole scan costs what it did;
  * a windowed search (``regions``: the faces of the previous frame) runs upright on every
    window, and only a window that finds nothing is searched again turned by +angle, then
    -angle (a tilted face being followed costs two or three window passes, an upright one one:
    upright first, because MTCNN's landmarks, hence the aligned crop, are best on a face near
    upright).
A face found turned keeps being found in its window by the turned pass, so it gets its id after
``min_hits`` frames as an upright one does.  The wrapper reads every other attribute through to
the detector it wraps (``base``), so the node's live parameter changes go to ``base``.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import cv2
import numpy as np

from .face_detection import Detection, _unique
from .scan_schedule import ScanRegion

__all__ = ['TurnedSearch', 'with_turned_search']


def _map_back(dets: Sequence[Detection], inverse: np.ndarray) -> list[Detection]:
    """Detections in a turned image, mapped into the frame by the 2x3 ``inverse`` affine: box
    centre moved (its side kept), landmarks moved point by point."""
    out = []
    for d in dets:
        cx, cy = inverse @ np.array([d.x + d.w / 2, d.y + d.h / 2, 1.0])
        marks = None
        if d.landmarks is not None:
            pts = np.asarray(d.landmarks, np.float64)
            back = np.hstack([pts, np.ones((len(pts), 1))]) @ inverse.T
            marks = tuple((float(x), float(y)) for x, y in back)
        out.append(Detection(float(cx - d.w / 2), float(cy - d.h / 2), d.w, d.h, d.confidence,
                             marks))
    return out


class TurnedSearch:
    """A face detector (``detect(image, regions)``, ``clone()``) that also searches the frame
    turned by +-``angle`` degrees (module docstring: when, and at what cost)."""

    def __init__(self, detector: Any, angle: float = 30.0) -> None:
        if not 0.0 < float(angle) < 90.0:
            raise ValueError(f'turned search angle must be in (0, 90) deg, got {angle}')
        self.base = detector
        self.angle = float(angle)
        self.whole_scans = 0          # whole-frame calls (the angle cycle's position)
        self.turned_found = 0         # faces found on a turned copy of the frame

    def __getattr__(self, name: str) -> Any:
        # only called for names not found on the wrapper: the wrapped detector's settings
        if name == 'base':
            raise AttributeError(name)
        return getattr(self.base, name)

    def clone(self) -> 'TurnedSearch':
        """The same search around a clone of the detector (for another thread)."""
        return TurnedSearch(self.base.clone(), self.angle)

    def detect(self, image: np.ndarray,
               regions: Optional[Sequence[ScanRegion]] = None) -> list[Detection]:
        """Faces in the frame, largest first (the wrapped detector's contract)."""
        if image is None or image.size == 0 or image.ndim < 2:
            return self.base.detect(image, regions)
        if regions is None:
            turn = (0.0, self.angle, 0.0, -self.angle)[self.whole_scans % 4]
            self.whole_scans += 1
            if turn == 0.0:
                return self.base.detect(image)
            found = self._whole(image, turn)
            self.turned_found += len(found)
            return found
        found = list(self.base.detect(image, regions))
        missing = [r for r in regions if not any(r.contains_centre(d.box) for d in found)]
        for turn in (self.angle, -self.angle):
            if not missing:
                break
            extra = [d for r in missing for d in self._window(image, r, turn)]
            self.turned_found += len(extra)
            found += extra
            missing = [r for r in missing if not any(r.contains_centre(d.box) for d in extra)]
        return _unique(found)

    def _turned(self, image: np.ndarray, m: np.ndarray, size: tuple[int, int],
                regions: Optional[list] = None) -> list[Detection]:
        """The detector on ``image`` warped by the 2x3 affine ``m`` into ``size`` (w, h), its
        faces mapped back into ``image``."""
        turned = cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        return _map_back(self.base.detect(turned, regions), cv2.invertAffineTransform(m))

    def _whole(self, image: np.ndarray, turn: float) -> list[Detection]:
        h, w = image.shape[:2]
        back = self._turned(image, cv2.getRotationMatrix2D((w / 2.0, h / 2.0), turn, 1.0), (w, h))
        # a face whose centre falls outside the frame was found in the replicated border
        return [d for d in back if 0 <= d.x + d.w / 2 < w and 0 <= d.y + d.h / 2 < h]

    def _window(self, image: np.ndarray, r: ScanRegion, turn: float) -> list[Detection]:
        w, h = int(r.x1 - r.x0), int(r.y1 - r.y0)
        if w < 2 or h < 2:
            return []
        cx, cy = (r.x0 + r.x1) / 2.0, (r.y0 + r.y1) / 2.0
        m = cv2.getRotationMatrix2D((cx, cy), turn, 1.0)
        m[:, 2] += (w / 2.0 - cx, h / 2.0 - cy)        # the window's centre to the crop's
        found = self._turned(image, m, (w, h), [ScanRegion(0, 0, w, h, r.min_size, r.max_size)])
        return [d for d in found if r.contains_centre(d.box)]


def with_turned_search(detector: Any, angle: float) -> Any:
    """``detector`` searching turned copies too (``TurnedSearch``), or itself for angle 0."""
    return TurnedSearch(detector, angle) if angle > 0.0 else detector
