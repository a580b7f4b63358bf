"""Aligned face crops from MTCNN's five landmarks, without ROS (issue 18 point 2).

A similarity transform (rotation, uniform scale, translation; closed-form Umeyama least squares)
maps a face's five landmarks (left eye, right eye, nose, left and right mouth corner, as MTCNN
orders them) onto ``FER_TEMPLATE``: where those points sit, on average, in a FER2013 crop, the
geometry the shipped vision encoder was trained on.  The face is then warped into a square crop of
that geometry, upright, at about its own resolution (``face_to_input`` resizes it to the
encoder's input as any crop).

How the template was derived (training/scripts/derive_face_template.py, run once): 2,000 FER2013
*training* faces (fixed seed, all seven classes), each upscaled 48 -> 144 px (cubic), padded by
24 px (edge replicate: MTCNN needs a little context around a face that fills the image), run
through ``MtcnnFaceDetector(min_face_size=48, min_confidence=0.9)``; where it found a face of side
>= 72 px, its landmarks were mapped back to crop coordinates and divided by the crop side.
Landmark sets more than 3 robust sd (median absolute deviation) from the per-coordinate median were
dropped, and the rest averaged.  Found on 1,769 of 2,000 faces; 1,268 kept
(all ten coordinates within the bound).

Where no landmarks are known (Haar detections, MTCNN missing the face on a pre-cropped image),
callers keep the plain box crop.
"""
from __future__ import annotations

from typing import Any, Optional

import cv2
import numpy as np

__all__ = ['FER_TEMPLATE', 'similarity_transform', 'fixed_rotation_transform',
           'roll_limited_transform', 'apply_transform', 'align_face', 'precrop_landmarks',
           'align_precropped', 'PRECROP_UPSCALE', 'PRECROP_PAD']

#: (x, y) of left eye, right eye, nose tip, left and right mouth corner in a FER2013 crop,
#: as fractions of the crop side (see the module docstring for how they were measured).
FER_TEMPLATE = np.array([[0.3241, 0.3917],
                         [0.6930, 0.3869],
                         [0.5073, 0.6050],
                         [0.3563, 0.7933],
                         [0.6654, 0.7900]], np.float64)

#: pre-cropped faces (FER 48x48) are upscaled to this side and padded before MTCNN looks for
#: their landmarks (the template's own measurement settings)
PRECROP_UPSCALE = 144
PRECROP_PAD = 24

_MIN_SIDE, _MAX_SIDE = 48, 256


def _point_sets(src: Any, dst: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both point sets as float64 [N, 2], checked to match with N >= 2."""
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    if src.shape != dst.shape or src.shape[0] < 2:
        raise ValueError(f'need two matching point sets of >= 2 points, got {src.shape} and '
                         f'{dst.shape}')
    return src, dst


def similarity_transform(src: Any, dst: Any) -> np.ndarray:
    """The 2x3 matrix M (``[s R | t]``) that maps the points ``src`` [N, 2] onto ``dst`` [N, 2]
    with least squared error over rotations, uniform scales and translations (Umeyama 1991; no
    reflection).  N >= 2 distinct points."""
    src, dst = _point_sets(src, dst)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    sc, dc = src - mu_s, dst - mu_d
    var_s = (sc ** 2).sum() / len(src)
    if var_s < 1e-12:
        raise ValueError('source points coincide')
    cov = dc.T @ sc / len(src)
    u, d, vt = np.linalg.svd(cov)
    fix = np.diag([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])
    rot = u @ fix @ vt
    scale = float(np.trace(np.diag(d) @ fix)) / var_s
    m = np.empty((2, 3), np.float64)
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def fixed_rotation_transform(src: Any, dst: Any, angle: float = 0.0) -> np.ndarray:
    """The 2x3 matrix M (``[s R(angle) | t]``) that maps ``src`` [N, 2] onto ``dst`` [N, 2] with
    least squared error over uniform scales and translations, the rotation fixed at ``angle``
    radians (0: scale and shift only).  N >= 2 distinct points."""
    src, dst = _point_sets(src, dst)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    sc, dc = (src - mu_s) @ rot.T, dst - mu_d
    var_s = (sc ** 2).sum()
    if var_s < 1e-12:
        raise ValueError('source points coincide')
    scale = float((sc * dc).sum()) / var_s
    m = np.empty((2, 3), np.float64)
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def roll_limited_transform(src: Any, dst: Any, keep_roll_deg: float = 0.0) -> np.ndarray:
    """``similarity_transform`` whose rotation leaves up to ``keep_roll_deg`` degrees of the
    face's roll in place: a face rolled by r is turned by sign(r) * max(0, |r| - keep_roll_deg)
    only (0: fully upright, as ``similarity_transform``; >= 180: never rotated), then scale and
    shift are fitted for that rotation (``fixed_rotation_transform``)."""
    m = similarity_transform(src, dst)
    if keep_roll_deg <= 0.0:
        return m
    angle = float(np.arctan2(m[1, 0], m[0, 0]))       # the rotation that makes the face upright
    keep = np.radians(float(keep_roll_deg))
    turn = float(np.sign(angle)) * max(0.0, abs(angle) - keep)
    return fixed_rotation_transform(src, dst, turn)


def apply_transform(m: np.ndarray, points: Any) -> np.ndarray:
    """``points`` [N, 2] mapped by the 2x3 matrix ``m``."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    return p @ m[:, :2].T + m[:, 2]


def align_face(image: np.ndarray, landmarks: Any, size: Optional[int] = None,
               template: np.ndarray = FER_TEMPLATE, keep_roll_deg: float = 0.0) -> np.ndarray:
    """The face with these five landmarks (image pixels) warped upright into a ``size`` x
    ``size`` crop whose landmarks sit on ``template`` (fractions of the side).  ``size`` None:
    about the face's own resolution (the side at which no pixels are invented or lost), kept
    within 48-256 px.  Pixels outside the image repeat its edge.  ``keep_roll_deg``: roll up to
    this many degrees stays in the crop, only the excess is turned upright
    (``roll_limited_transform``; 0 = fully upright, >= 180 = scale and shift only: an
    axis-aligned square cut in FER2013's framing).  Why: FER2013's crops, which the encoder was
    trained on, keep their faces' own roll."""
    lm = np.asarray(landmarks, np.float64).reshape(-1, 2)
    unit = roll_limited_transform(lm, template, keep_roll_deg)   # image px -> crop-side fractions
    if size is None:
        px_per_unit = 1.0 / max(float(np.hypot(*unit[:, 0])), 1e-9)
        size = int(np.clip(round(px_per_unit), _MIN_SIDE, _MAX_SIDE))
    m = unit * float(size)
    return cv2.warpAffine(image, m, (int(size), int(size)), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def precrop_landmarks(crop: np.ndarray, detector: Any) -> Optional[np.ndarray]:
    """Five landmarks [5, 2] (crop pixels) of the face that fills a pre-cropped image (FER style), or
    None where ``detector`` (MTCNN, or any giving landmarks) finds none: the crop is upscaled to
    ``PRECROP_UPSCALE`` px and padded by ``PRECROP_PAD`` (edge replicate), as when the template was
    measured; the largest face of side >= half the upscaled crop counts."""
    if crop is None or crop.ndim < 2 or min(crop.shape[:2]) < 2:
        return None
    h, w = crop.shape[:2]
    up = cv2.resize(crop, (PRECROP_UPSCALE, PRECROP_UPSCALE),
                    interpolation=cv2.INTER_CUBIC if max(h, w) < PRECROP_UPSCALE
                    else cv2.INTER_AREA)
    pad = PRECROP_PAD
    up = cv2.copyMakeBorder(up, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    for d in detector.detect(up):
        if d.landmarks is not None and max(d.w, d.h) >= PRECROP_UPSCALE / 2:
            lm = np.asarray(d.landmarks, np.float64).reshape(-1, 2) - pad
            return lm * np.array([w / PRECROP_UPSCALE, h / PRECROP_UPSCALE])
    return None


def align_precropped(crop: np.ndarray, detector: Any) -> tuple[np.ndarray, bool]:
    """(the crop aligned to ``FER_TEMPLATE`` at its own side, True) where ``detector`` finds its
    landmarks, else (the crop unchanged, False)."""
    lm = precrop_landmarks(crop, detector)
    if lm is None:
        return crop, False
    return align_face(crop, lm, size=int(max(crop.shape[:2]))), True
