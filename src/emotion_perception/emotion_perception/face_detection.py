"""Offline face detection with OpenCV's Haar cascade (weights ship inside opencv-python).

Why Haar and not MTCNN: on this robot's CPU budget (one core, 30 fps, p95 <= 25 ms for the whole
vision path) the cascade on a half-resolution frame costs ~10-15 ms, while MTCNN (facenet-pytorch)
costs several times that; both find the frontal faces the emotion model needs.  The measured
numbers are in the package README.  Detection runs on a downscaled, histogram-equalised grey
image and boxes are mapped back to full resolution.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ['Detection', 'HaarFaceDetector', 'CASCADES']

CASCADES = ('haarcascade_frontalface_alt2.xml', 'haarcascade_frontalface_default.xml',
            'haarcascade_frontalface_alt.xml')


@dataclass
class Detection:
    """A face box in full-resolution pixels and a confidence in [0, 1]."""

    x: float
    y: float
    w: float
    h: float
    confidence: float

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

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a uint8 BGR or grey image, largest first."""
        if image is None or image.size == 0:
            return []
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self.scale != 1.0:
            grey = cv2.resize(grey, None, fx=self.scale, fy=self.scale,
                              interpolation=cv2.INTER_AREA)
        if self.equalize:
            grey = cv2.equalizeHist(grey)
        min_px = max(8, int(round(self.min_face_size * self.scale)))
        boxes, counts = self._clf.detectMultiScale2(
            grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(min_px, min_px))
        out = []
        for (x, y, w, h), n in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(counts).reshape(-1)):
            s = 1.0 / self.scale
            out.append(Detection(float(x * s), float(y * s), float(w * s), float(h * s),
                                 float(n) / (float(n) + self.min_neighbors)))
        out.sort(key=lambda d: d.w * d.h, reverse=True)
        return out
