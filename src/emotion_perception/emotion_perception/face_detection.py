"""Offline face detection with OpenCV's Haar cascade (weights ship inside opencv-python), and
the ``Detection`` every detector returns.

The Haar cascade is the ``face_detector: haar`` choice; the default is MTCNN
(``mtcnn_detection``), which on generated frames of FER2013 validation faces finds roughly twice
as many faces (small, turned, blurred, dark) at a lower cost per 640x480 frame
(bench/bench_detection.py).  Detection runs on a downscaled, histogram-equalised grey image and
boxes are mapped back to full resolution.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

from .scan_schedule import ScanRegion

__all__ = ['Detection', 'HaarFaceDetector', 'SplitDetector', 'CASCADES', 'iou']

CASCADES = ('haarcascade_frontalface_alt2.xml', 'haarcascade_frontalface_default.xml',
            'haarcascade_frontalface_alt.xml')


@dataclass
class Detection:
    """A face box in full-resolution pixels and a confidence in [0, 1]; ``landmarks``: five
    (x, y) points (eyes, nose, mouth corners, as MTCNN orders them) where the detector gives
    them (MTCNN), else None (Haar)."""

    x: float
    y: float
    w: float
    h: float
    confidence: float
    landmarks: Optional[tuple] = None

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.w, self.h


class HaarFaceDetector:
    """cv2.CascadeClassifier with the knobs that trade speed for recall.

    Confidence: the cascade has no calibrated score; we use the number of merged raw detections
    ``n`` (how many scales/positions agreed) as ``n / (n + min_neighbors)``, so a face that just
    passes the ``min_neighbors`` vote gets 0.5 and a strongly supported one approaches 1.
    """

    def __init__(self, cascade: str = CASCADES[0], scale: float = 0.5,
                 scale_factor: float = 1.15, min_neighbors: int = 3,
                 min_face_size: int = 48, equalize: bool = True) -> None:
        path = cascade if os.path.isabs(cascade) else os.path.join(cv2.data.haarcascades, cascade)
        if not os.path.isfile(path):
            raise ValueError(f'Haar cascade {path!r} not found (choose one of {CASCADES} '
                             f'or an absolute path)')
        self._clf = cv2.CascadeClassifier(path)
        if self._clf.empty():
            raise ValueError(f'Haar cascade {path!r} could not be loaded')
        if not 0.1 <= scale <= 1.0:
            raise ValueError(f'detection scale must be in [0.1, 1], got {scale}')
        if scale_factor <= 1.0:
            raise ValueError(f'scale_factor must be > 1, got {scale_factor}')
        if min_neighbors < 1 or min_face_size < 8:
            raise ValueError('min_neighbors must be >= 1 and min_face_size >= 8 px')
        self.scale, self.scale_factor = float(scale), float(scale_factor)
        self.min_neighbors, self.min_face_size = int(min_neighbors), int(min_face_size)
        self.equalize = equalize
        self._path = path

    def clone(self) -> 'HaarFaceDetector':
        """The same settings with a classifier of its own, for another thread (one
        CascadeClassifier is not documented as safe to share between threads)."""
        return HaarFaceDetector(self._path, self.scale, self.scale_factor, self.min_neighbors,
                                self.min_face_size, self.equalize)

    def detect(self, image: np.ndarray,
               regions: Optional[Sequence[ScanRegion]] = None) -> list[Detection]:
        """Faces in a uint8 BGR or grey image, largest first.

        ``regions`` (from ``scan_schedule.ScanSchedule``) limits the search to those parts of
        the frame and face sizes; None scans the whole frame for every size from
        ``min_face_size`` up.  The grey, downscaled, equalised image is the same either way, so
        a face gets the same cascade votes in a region as in the whole frame.
        """
        if image is None or image.size == 0:
            return []
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self.scale != 1.0:
            grey = cv2.resize(grey, None, fx=self.scale, fy=self.scale,
                              interpolation=cv2.INTER_AREA)
        if self.equalize:
            grey = cv2.equalizeHist(grey)
        min_px = max(8, int(round(self.min_face_size * self.scale)))
        if regions is None:
            return self._to_detections(self._scan(grey, min_px, None), 0, 0)
        out: list[Detection] = []
        for r in regions:
            x0, y0 = int(r.x0 * self.scale), int(r.y0 * self.scale)
            x1, y1 = int(math.ceil(r.x1 * self.scale)), int(math.ceil(r.y1 * self.scale))
            lo = max(min_px, int(r.min_size * self.scale))
            hi = int(math.ceil(r.max_size * self.scale))
            if hi < lo or min(x1 - x0, y1 - y0) < lo:
                continue
            out += self._to_detections(self._scan(grey[y0:y1, x0:x1], lo, hi), x0, y0)
        return _unique(out)

    def _scan(self, grey: np.ndarray, min_px: int, max_px: Optional[int]) -> tuple:
        kw = {} if max_px is None else {'maxSize': (max_px, max_px)}
        return self._clf.detectMultiScale2(grey, scaleFactor=self.scale_factor,
                                           minNeighbors=self.min_neighbors,
                                           minSize=(min_px, min_px), **kw)

    def _to_detections(self, found: tuple, ox: int, oy: int) -> list[Detection]:
        """Cascade boxes (detection scale, offset by the region corner) at full resolution."""
        boxes, counts = found
        s = 1.0 / self.scale
        out = [Detection(float((x + ox) * s), float((y + oy) * s), float(w * s), float(h * s),
                         float(n) / (float(n) + self.min_neighbors))
               for (x, y, w, h), n in zip(np.asarray(boxes).reshape(-1, 4),
                                          np.asarray(counts).reshape(-1))]
        out.sort(key=lambda d: d.w * d.h, reverse=True)
        return out


class SplitDetector:
    """Two detectors behind one ``detect(image, regions)``: ``whole`` scans whole frames
    (``regions`` None), ``windows`` searches the windows around known faces (``scan_schedule``).

    face_node's ``face_detector: mtcnn_yunet``: MTCNN finds small faces in a whole frame that
    YuNet misses, and YuNet follows a face of up to ~120 px in its window at less cost than MTCNN
    (a 240-px one at more: src/emotion_perception/README.md).
    ``clone()`` clones both; ``parts`` lists both, so a live setting reaches whichever has it
    (``FacePipeline.set_detector_setting``).  Any other attribute (a setting, a counter such as
    MTCNN's ``brightened``, ``model_dir``) is read from ``whole`` if it has it, else ``windows``.
    """

    def __init__(self, whole, windows) -> None:
        self.whole, self.windows = whole, windows

    def __getattr__(self, name: str):
        # only called for names not found on this object
        if name not in ('whole', 'windows'):
            for part in (self.whole, self.windows):
                if hasattr(part, name):
                    return getattr(part, name)
        raise AttributeError(name)

    @property
    def parts(self) -> tuple:
        return (self.whole, self.windows)

    def clone(self) -> 'SplitDetector':
        return SplitDetector(self.whole.clone(), self.windows.clone())

    def detect(self, image: np.ndarray,
               regions: Optional[Sequence[ScanRegion]] = None) -> list[Detection]:
        """Faces in the frame, largest first (either detector's contract)."""
        return (self.whole if regions is None else self.windows).detect(image, regions)


def _unique(dets: list[Detection], overlap: float = 0.3) -> list[Detection]:
    """Largest first, without the copies that overlapping regions find of the same face."""
    dets = sorted(dets, key=lambda d: d.w * d.h, reverse=True)
    kept: list[Detection] = []
    for d in dets:
        if all(iou(d.box, k.box) <= overlap for k in kept):
            kept.append(d)
    return kept


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0
