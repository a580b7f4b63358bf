"""MTCNN face detection (P-, R-, O-Net cascade, five landmarks) with onnxruntime, no torch.

Why MTCNN: on frames built from FER2013 validation faces the Haar cascade finds a face in only
~62 % of frames (small, turned, blurred and dark faces); MTCNN's three small CNNs find far more at
a similar cost on a 640x480 frame (bench/bench_detection.py has both).  The nets are
facenet-pytorch's weights (MIT), exported once to ONNX by training/scripts/convert_mtcnn.py and
shipped in src/emotion_runtime/models/face_detector/ (README.md there: source and hashes).

The algorithm is facenet-pytorch's ``detect_face`` in numpy + OpenCV: an image pyramid from
``min_face_size`` down by ``factor`` (0.709); PNet on each scale -> candidate boxes (NMS 0.5 per
scale, 0.7 over all); RNet on 24x24 crops refines and rejects; ONet on 48x48 crops refines again
and gives the landmarks (NMS 0.7, "Min" overlap).  Stage thresholds 0.6 / 0.7 / 0.7 as
facenet-pytorch's defaults; ``min_confidence`` then drops ONet scores below it (false positives on
textured backgrounds mostly score 0.7-0.95).

Windowed search (``scan_schedule`` regions): PNet runs only on each region's crop, and only at the
pyramid scales of the region's face sizes; RNet/ONet then run once on the candidates of all regions
together, on the full image (a box at a window's edge is cropped from the frame, not the window),
and faces outside the region's size range are dropped.  ONet, the costliest stage (~0.45 ms a
crop on one core; a tracked face leaves ~7 RNet candidates on it), first gets only each window's
``ONET_FIRST`` best RNet candidates, and the others of a window only when none of those gives a
face that will be reported: a tracked face costs ~2 crops, and no window loses a face the full
batch would have found for want of candidates.  Whole-frame scans run ONet on every candidate.

Low light: the nets see (x - 127.5) / 128, so a dark frame reaches them with a quarter of its
contrast and most of its faces are missed.  When the 99th percentile of the searched pixels (the
whole frame or the windows, sampled on a grid) is below ``LOW_LIGHT_LEVEL``, the frame is scaled
by up to ``low_light_gain`` so that it reaches ``LOW_LIGHT_TARGET`` before the three stages run
(bench/bench_detection.py, "low light": README "Low light (measured)").  Only the detector's copy
is scaled; the crops the encoder reads are not.
"""
from __future__ import annotations

import os
import pathlib
from typing import Optional, Sequence

import cv2
import numpy as np
import onnxruntime as ort

from .face_detection import Detection, _unique
from .scan_schedule import ScanRegion, searchable

__all__ = ['MtcnnFaceDetector', 'default_model_dir', 'MODEL_FILES']

#: ONet candidates per window in the first round (``MtcnnFaceDetector._detect``)
ONET_FIRST = 2

#: a searched area whose 99th percentile value is below this counts as dark ...
LOW_LIGHT_LEVEL = 128
#: ... and is scaled so that its 99th percentile reaches this (up to ``low_light_gain``)
LOW_LIGHT_TARGET = 200

MODEL_FILES = ('pnet.onnx', 'rnet.onnx', 'onet.onnx')


def default_model_dir() -> pathlib.Path:
    """$EMOTION_FACE_DETECTOR, else emotion_runtime's ament share dir, else the source tree."""
    env = os.environ.get('EMOTION_FACE_DETECTOR')
    if env:
        return pathlib.Path(env)
    try:
        from ament_index_python.packages import (  # noqa: PLC0415 - absent outside ROS
            get_package_share_directory,
        )
        share = pathlib.Path(get_package_share_directory('emotion_runtime')) / 'models' / \
            'face_detector'
        if (share / MODEL_FILES[0]).is_file():
            return share
    except Exception:  # noqa: BLE001 - ament not installed, package not built: fall through
        pass
    return pathlib.Path(__file__).resolve().parents[2] / 'emotion_runtime' / 'models' / \
        'face_detector'


def _session(path: pathlib.Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=['CPUExecutionProvider'])


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str = 'union',
         plus_one: bool = False) -> np.ndarray:
    """Greedy NMS, highest score first; indices kept.  ``plus_one``: pixel-inclusive areas (as
    facenet-pytorch's numpy "Min" NMS), else torchvision's continuous areas."""
    if boxes.shape[0] == 0:
        return np.zeros(0, np.int64)
    one = 1.0 if plus_one else 0.0
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + one) * (y2 - y1 + one)
    order = np.argsort(-scores, kind='stable')
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + one)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + one)
        inter = w * h
        if method == 'min':
            o = inter / np.maximum(np.minimum(area[i], area[rest]), 1e-9)
        else:
            o = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = rest[o <= threshold]
    return np.asarray(keep, np.int64)


def _rerec(b: np.ndarray) -> np.ndarray:
    """Boxes made square (side = longer side, same centre), in place."""
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = np.maximum(w, h)
    b[:, 0] += w * 0.5 - side * 0.5
    b[:, 1] += h * 0.5 - side * 0.5
    b[:, 2] = b[:, 0] + side
    b[:, 3] = b[:, 1] + side
    return b


def _bbreg(b: np.ndarray, reg: np.ndarray) -> np.ndarray:
    w = b[:, 2] - b[:, 0] + 1
    h = b[:, 3] - b[:, 1] + 1
    b[:, 0] += reg[:, 0] * w
    b[:, 1] += reg[:, 1] * h
    b[:, 2] += reg[:, 2] * w
    b[:, 3] += reg[:, 3] * h
    return b


def _normalise(rgb: np.ndarray) -> np.ndarray:
    """HWC or NHWC uint8/float RGB -> float32 NCHW, (x - 127.5) / 128."""
    x = (np.asarray(rgb, np.float32) - 127.5) * 0.0078125
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None] if x.ndim == 3 else
                                x.transpose(0, 3, 1, 2))


def _edges(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_out + 1`` edges of ``n_out`` equal cells over ``n_in`` pixels: (index, fraction),
    the index at most ``n_in - 1`` (the far edge is pixel n_in - 1, fraction 1)."""
    e = np.arange(n_out + 1) * (n_in / n_out)
    i = np.minimum(np.floor(e).astype(np.int64), n_in - 1)
    return i, e - i


class _AreaPyramid:
    """``cv2.resize(image, size, interpolation=INTER_AREA)`` for the levels of an image pyramid
    (uint8 image, grey or with channels), the small levels from the image's integral.

    Why: OpenCV's area reduction walks every input pixel at each call, and unless the ratio is
    a whole number it takes a slow generic path: each level of a 640x480 frame's pyramid cost
    about 0.6 ms however small, eight levels about 5 ms, as much as the three nets.  The integral
    of an image is bilinear within each pixel, so the mean over a cell with fractional edges is
    four bilinear samples of it, and a level from the integral costs in proportion to its own
    size (about 50 ns a pixel against OpenCV's 3 ns per input pixel): a whole-frame scan of a
    640x480 frame takes 12.0 ms instead of 14.2 with OpenCV's levels, a window around a 240-px
    face 5.2 ms instead of 7.5.  The values are OpenCV's to the rounding (both round the mean to
    an integer; they can differ by 1 where the mean is within float32 error of a half).  A
    whole-number ratio or a large level stays with OpenCV.
    """

    COST_RATIO = 18       # an integral pixel costs about this many OpenCV input pixels
    INT32_PIXELS = (2 ** 31 - 1) // 255     # the integral of a larger image needs float64

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self._flat: Optional[np.ndarray] = None

    def level(self, width: int, height: int) -> np.ndarray:
        h, w = self.image.shape[:2]
        whole = w % width == 0 and h % height == 0
        if whole or width > w or height > h or width * height * self.COST_RATIO > w * h:
            return cv2.resize(self.image, (width, height), interpolation=cv2.INTER_AREA)
        if self._flat is None:     # [h + 1, w + 1, C]; whole numbers while they fit in int32
            depth = cv2.CV_32S if h * w <= self.INT32_PIXELS else cv2.CV_64F
            integral = cv2.integral(self.image, sdepth=depth)
            self._flat = integral.reshape((h + 1) * (w + 1), -1)
        iy, fy = _edges(h, height)
        ix, fx = _edges(w, width)
        stride, flat = w + 1, self._flat
        at = iy[:, None] * stride + ix[None, :]
        fx, fy = fx[None, :, None], fy[:, None, None]
        a, b = flat.take(at, axis=0), flat.take(at + 1, axis=0)
        c, d = flat.take(at + stride, axis=0), flat.take(at + stride + 1, axis=0)
        upper = a + (b - a) * fx
        j = upper + (c + (d - c) * fx - upper) * fy          # the integral at the cell edges
        cells = j[1:, 1:] - j[:-1, 1:] - j[1:, :-1] + j[:-1, :-1]
        out = np.rint(cells * (width * height / (w * h))).astype(np.float32)
        return out if self.image.ndim == 3 else out[:, :, 0]


def _low_light_scale(rgb: np.ndarray, rects: Sequence[tuple], max_gain: float) -> float:
    """The gain that brings the 99th percentile of ``rgb`` inside ``rects`` (x0, y0, x1, y1),
    sampled on a grid of about 60 points a side, to ``LOW_LIGHT_TARGET``; 1.0 when that
    percentile is ``LOW_LIGHT_LEVEL`` or more, or ``max_gain`` <= 1."""
    if max_gain <= 1.0:
        return 1.0
    samples = []
    for x0, y0, x1, y1 in rects:
        step = max(1, min(x1 - x0, y1 - y0) // 60)
        samples.append(rgb[y0:y1:step, x0:x1:step].ravel())
    values = np.concatenate(samples) if samples else np.zeros(0, np.uint8)
    if values.size == 0:
        return 1.0
    counts = np.cumsum(np.bincount(values, minlength=256))
    level = int(np.searchsorted(counts, 0.99 * counts[-1]))
    if level >= LOW_LIGHT_LEVEL:
        return 1.0
    return min(float(max_gain), LOW_LIGHT_TARGET / max(level, 1))


#: facenet-pytorch's PNet / RNet / ONet stage thresholds (face_node's mtcnn_pnet_threshold and
#: mtcnn_rnet_threshold default to the first two)
DEFAULT_THRESHOLDS = (0.6, 0.7, 0.7)


def _checked(thresholds: Sequence[float]) -> tuple[float, float, float]:
    """The three stage thresholds as floats; ValueError unless three values in [0, 1)."""
    t = tuple(float(v) for v in thresholds)
    if len(t) != 3 or not all(0.0 <= v < 1.0 for v in t):
        raise ValueError(f'MTCNN stage thresholds must be three values in [0, 1), got '
                         f'{tuple(thresholds)}')
    return t


def _crops(rgb: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """facenet-pytorch's ``pad`` + crop + area resize of each box; (batch, index of each box)."""
    h, w = rgb.shape[:2]
    out, idx = [], []
    for k, (x1, y1, x2, y2) in enumerate(np.trunc(boxes[:, :4]).astype(np.int64)):
        x1, y1, x2, y2 = max(x1, 1), max(y1, 1), min(x2, w), min(y2, h)
        if y2 > y1 - 1 and x2 > x1 - 1:
            patch = rgb[y1 - 1:y2, x1 - 1:x2]
            if patch.size:
                out.append(cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA))
                idx.append(k)
    if not out:
        return np.zeros((0, 3, size, size), np.float32), np.zeros(0, np.int64)
    return _normalise(np.stack(out)), np.asarray(idx, np.int64)


class MtcnnFaceDetector:
    """MTCNN behind HaarFaceDetector's interface: ``detect(image, regions)`` and ``clone()``.

    ``square``: report the ONet box made square about its centre (MTCNN's box runs brow to chin
    and is narrower than tall; the Haar box the encoder's crops were tuned on is square and
    takes in the forehead).  ``raw(rgb)`` gives facenet-pytorch's own output (x1, y1, x2, y2,
    score boxes and [N, 5, 2] landmarks) for comparisons.
    """

    def __init__(self, model_dir: Optional[str] = None, min_face_size: int = 48,
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS, factor: float = 0.709,
                 min_confidence: float = 0.9, threads: int = 1, square: bool = True,
                 low_light_gain: float = 4.0, _sessions: Optional[tuple] = None) -> None:
        if min_face_size < 12:
            raise ValueError(f'min_face_size must be >= 12 px for MTCNN, got {min_face_size}')
        if not 0.1 <= factor < 1.0:
            raise ValueError(f'pyramid factor must be in [0.1, 1), got {factor}')
        if not low_light_gain >= 1.0:
            raise ValueError(f'low_light_gain must be >= 1 (1 = off), got {low_light_gain}')
        self.model_dir = pathlib.Path(model_dir) if model_dir else default_model_dir()
        if _sessions is None:
            missing = [f for f in MODEL_FILES if not (self.model_dir / f).is_file()]
            if missing:
                raise ValueError(f'MTCNN model files {missing} not found in {self.model_dir}')
            _sessions = tuple(_session(self.model_dir / f, threads) for f in MODEL_FILES)
        self._pnet, self._rnet, self._onet = _sessions
        self.min_face_size, self.factor = int(min_face_size), float(factor)
        self.thresholds = _checked(thresholds)
        self.min_confidence, self.threads, self.square = float(min_confidence), threads, square
        self.low_light_gain = float(low_light_gain)
        self.brightened = 0           # detect() calls on a dark image, scaled (low_light_gain)

    @property
    def pnet_threshold(self) -> float:
        """PNet's score a window needs to become a candidate (the first stage threshold)."""
        return self.thresholds[0]

    @pnet_threshold.setter
    def pnet_threshold(self, value: float) -> None:
        self.thresholds = _checked((float(value),) + self.thresholds[1:])

    @property
    def rnet_threshold(self) -> float:
        """RNet's score a candidate needs to reach ONet (the second stage threshold)."""
        return self.thresholds[1]

    @rnet_threshold.setter
    def rnet_threshold(self, value: float) -> None:
        self.thresholds = _checked(self.thresholds[:1] + (float(value),) + self.thresholds[2:])

    def clone(self) -> 'MtcnnFaceDetector':
        """The same settings for another thread; onnxruntime sessions are safe to run from
        several threads at once, so they are shared."""
        return MtcnnFaceDetector(str(self.model_dir), self.min_face_size, self.thresholds,
                                 self.factor, self.min_confidence, self.threads, self.square,
                                 self.low_light_gain, _sessions=(self._pnet, self._rnet, self._onet))

    # -- the detector interface ----------------------------------------------------------------
    def detect(self, image: np.ndarray,
               regions: Optional[Sequence[ScanRegion]] = None) -> list[Detection]:
        """Faces in a uint8 BGR or grey image, largest first, with five landmarks each.
        ``regions`` limits the search to those parts of the frame and face sizes (see the
        module docstring); None scans the whole frame from ``min_face_size`` up."""
        if image is None or image.size == 0:
            return []
        rgb = (cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2
               else cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        h, w = rgb.shape[:2]
        if regions is None:
            rgb = self._lit(rgb, [(0, 0, w, h)])
            boxes, points = self._detect(rgb, [((0, 0, w, h), self.min_face_size, None)])
            return self._to_detections(boxes, points, None)
        plans = searchable(regions, w, h, self.min_face_size)
        limits = [(*rect, lo, hi) for rect, lo, hi in plans]
        if not plans:
            return []
        rgb = self._lit(rgb, [rect for rect, _, _ in plans])
        boxes, points = self._detect(rgb, plans)
        return _unique(self._to_detections(boxes, points, limits))

    def _lit(self, rgb: np.ndarray, rects: list) -> np.ndarray:
        """``rgb`` scaled when the searched ``rects`` are dark (module docstring, low light)."""
        gain = _low_light_scale(rgb, rects, self.low_light_gain)
        if gain <= 1.0:
            return rgb
        self.brightened += 1
        return cv2.convertScaleAbs(rgb, alpha=gain)

    def raw(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """facenet-pytorch's ``MTCNN.detect`` on an RGB image: ([N, 5] x1 y1 x2 y2 score,
        [N, 5, 2] landmarks), no ``min_confidence``, no squaring."""
        h, w = rgb.shape[:2]
        return self._detect(rgb, [((0, 0, w, h), self.min_face_size, None)])

    # -- the three stages ----------------------------------------------------------------------
    def _scales(self, side: int, lo: float, hi: Optional[float]) -> list[float]:
        m = 12.0 / lo
        scales, minl = [], side * m
        s = m
        while minl >= 12 and (hi is None or 12.0 / s <= hi * 1.1 or not scales):
            scales.append(s)
            s *= self.factor
            minl *= self.factor
        return scales

    def _propose(self, rgb: np.ndarray, rect: tuple, lo: float, hi: Optional[float]) -> list:
        x0, y0, x1, y1 = rect
        crop = rgb[y0:y1, x0:x1]
        ch, cw = crop.shape[:2]
        pyramid = _AreaPyramid(crop)
        t0 = self.thresholds[0]
        found = []
        for s in self._scales(min(ch, cw), lo, hi):
            im = pyramid.level(int(cw * s + 1), int(ch * s + 1))
            reg, prob = self._pnet.run(None, {'image': _normalise(im)})
            p = prob[0, 1]
            ys, xs = np.nonzero(p >= t0)
            if ys.size == 0:
                continue
            b = np.empty((ys.size, 9), np.float32)
            b[:, 0] = np.floor((2 * xs + 1) / s)
            b[:, 1] = np.floor((2 * ys + 1) / s)
            b[:, 2] = np.floor((2 * xs + 12) / s)
            b[:, 3] = np.floor((2 * ys + 12) / s)
            b[:, 4] = p[ys, xs]
            b[:, 5:9] = reg[0][:, ys, xs].T
            b = b[_nms(b[:, :4], b[:, 4], 0.5)]
            b[:, [0, 2]] += x0
            b[:, [1, 3]] += y0
            found.append(b)
        return found

    def _detect(self, rgb: np.ndarray, plans: list) -> tuple[np.ndarray, np.ndarray]:
        empty = (np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32))
        found = [b for rect, lo, hi in plans for b in self._propose(rgb, rect, lo, hi)]
        if not found:
            return empty
        b = np.concatenate(found)
        b = b[_nms(b[:, :4], b[:, 4], 0.7)]
        rw, rh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        boxes = np.stack([b[:, 0] + b[:, 5] * rw, b[:, 1] + b[:, 6] * rh,
                          b[:, 2] + b[:, 7] * rw, b[:, 3] + b[:, 8] * rh, b[:, 4]], 1)
        boxes = _rerec(boxes)
        # RNet
        batch, idx = _crops(rgb, boxes, 24)
        if not idx.size:
            return empty
        boxes = boxes[idx]
        reg, prob = self._rnet.run(None, {'image': batch})
        keep = prob[:, 1] > self.thresholds[1]
        boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], 1)
        reg = reg[keep]
        pick = _nms(boxes[:, :4], boxes[:, 4], 0.7)
        boxes = _rerec(_bbreg(boxes[pick], reg[pick]))
        # ONet: windows (regions with a size limit) in two rounds, a whole frame at once
        if all(hi is not None for _, _, hi in plans):
            boxes, points = self._onet_in_windows(rgb, boxes, plans)
        else:
            boxes, points, _ = self._onet_stage(rgb, boxes)
        pick = _nms(boxes[:, :4], boxes[:, 4], 0.7, 'min', plus_one=True)
        return boxes[pick], points[pick]                  # float32 from _onet_stage

    def _onet_in_windows(self, rgb: np.ndarray, boxes: np.ndarray,
                         plans: list) -> tuple[np.ndarray, np.ndarray]:
        """ONet on each window's ONET_FIRST best candidates, then on the other candidates of the
        windows where none of those gave a face that will be reported.  Each candidate belongs
        to the window whose centre is nearest among those containing its centre (two faces
        side by side have overlapping windows; neither may take the other's candidates)."""
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        dist = np.full((len(plans), len(boxes)), np.inf)
        for k, ((x0, y0, x1, y1), _, _) in enumerate(plans):
            inside = (cx >= x0) & (cx <= x1) & (cy >= y0) & (cy <= y1)
            d = np.hypot(cx - (x0 + x1) / 2, cy - (y0 + y1) / 2)
            dist[k, inside] = d[inside]
        owner = np.where(np.isfinite(dist).any(0), dist.argmin(0), -1)
        first = owner < 0
        for k in range(len(plans)):
            idx = np.nonzero(owner == k)[0]
            first[idx[np.argsort(-boxes[idx, 4], kind='stable')[:ONET_FIRST]]] = True
        out, pts, src = self._onet_stage(rgb, boxes[first])
        src_owner = owner[np.nonzero(first)[0][src]]
        done = {int(o) for o, score in zip(src_owner, out[:, 4]) if score >= self.min_confidence}
        rest = ~first & (owner >= 0) & ~np.isin(owner, list(done))
        if rest.any():
            more, more_pts, _ = self._onet_stage(rgb, boxes[rest])
            out, pts = np.concatenate([out, more]), np.concatenate([pts, more_pts])
        return out, pts

    def _onet_stage(self, rgb: np.ndarray,
                    boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ONet on the candidates: refined boxes with scores, their landmarks (before the final
        NMS) and the index of the candidate each came from."""
        empty = (np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32),
                 np.zeros(0, np.int64))
        if not len(boxes):
            return empty
        batch, idx = _crops(rgb, boxes, 48)
        if not idx.size:
            return empty
        boxes = boxes[idx]
        reg, lm, prob = self._onet.run(None, {'image': batch})
        keep = prob[:, 1] > self.thresholds[2]
        src = idx[keep]
        boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], 1)
        reg, lm = reg[keep], lm[keep]
        wi = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        hi = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = np.stack([wi * lm[:, :5] + boxes[:, 0:1] - 1,
                           hi * lm[:, 5:] + boxes[:, 1:2] - 1], 2)
        return _bbreg(boxes, reg).astype(np.float32), points.astype(np.float32), src

    def _to_detections(self, boxes: np.ndarray, points: np.ndarray,
                       limits: Optional[list]) -> list[Detection]:
        out = []
        for (x1, y1, x2, y2, score), pts in zip(boxes, points):
            if score < self.min_confidence:
                continue
            w, h = float(x2 - x1), float(y2 - y1)
            if w <= 1 or h <= 1:
                continue
            x, y = float(x1), float(y1)
            if self.square:
                side = max(w, h)
                x, y, w, h = x + w / 2 - side / 2, y + h / 2 - side / 2, side, side
            if limits is not None:
                side, cx, cy = max(w, h), x + w / 2, y + h / 2
                if not any(rx0 <= cx <= rx1 and ry0 <= cy <= ry1 and lo <= side <= hi
                           for rx0, ry0, rx1, ry1, lo, hi in limits):
                    continue
            out.append(Detection(x, y, w, h, float(score),
                                 tuple((float(px), float(py)) for px, py in pts)))
        out.sort(key=lambda d: d.w * d.h, reverse=True)
        return out
