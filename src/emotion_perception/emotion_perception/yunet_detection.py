"""YuNet face detection (one small CNN, five landmarks) with onnxruntime.

The net is OpenCV Zoo's ``face_detection_yunet_2023mar.onnx`` (MIT, Shiqi Yu), shipped byte for
byte in src/emotion_runtime/models/face_detector/ (README.md there: source, licence, sha256).  The
file declares a fixed 1x3x640x640 input, but every layer after it is convolutional and its
reshapes use -1, so the graph is opened with the height and width made free (in memory; the file
is not changed) and runs on any size that is a multiple of 32.

The input is the BGR image as float32 0-255 (no normalisation), padded with zeros at the right
and bottom to a multiple of 32, as OpenCV's ``FaceDetectorYN`` feeds it.  Decoding follows
``FaceDetectorYN``: for each stride s of 8, 16 and 32 and each cell (row r, column c) the score is
sqrt(cls * obj), the box centre ((c + dx) s, (r + dy) s), its size (exp(dw) s, exp(dh) s), and the
landmarks ((c + lx) s, (r + ly) s); then NMS at ``nms_threshold`` (0.3).

YuNet was trained on faces of about 10 to 300 px.  A whole-frame scan therefore runs on the frame
scaled so that its short side is ``WHOLE_FRAME_SIDE`` (320 px: a 640x480 frame at 0.667, so a 40-px
face is searched at 27 px and a face as tall as the frame at 320 px); a windowed search
(``scan_schedule`` regions) runs on each region's crop scaled so that the region's largest face
size is at most ``WINDOW_MAX_FACE`` px and, within that, its smallest at least ``WINDOW_MIN_FACE``
px (a window around a 60-px face, which seeks faces of 48-90 px, is searched enlarged 1.33 times:
bench_detection's 60-px faces are then found in their windows 90 % of the time, 86 % at their own
size).  Faces outside the region's size range or centred outside it are dropped, as with MTCNN.
The net's landmarks (the person's right eye, left eye, nose tip, right and left mouth corners: on
an upright face the image's left first) are in MTCNN's order but not at MTCNN's places (YuNet's
mouth corners sit higher, by ~3 % of the face), and the vision encoder's aligned crops are MTCNN's
geometry (``face_alignment.FER_TEMPLATE``); so each face's points are moved to where MTCNN would
put them (``to_mtcnn_landmarks``; ``mtcnn_landmarks=False`` keeps the net's own).  The encoder's
own label per frame on the demo clip's faces scored 0.560 without that move, 0.710 with it, 0.767
on MTCNN's crops (src/emotion_perception/README.md, "MTCNN on whole frames, YuNet in windows").
"""
from __future__ import annotations

import hashlib
import math
import pathlib
from typing import Optional, Sequence

import cv2
import numpy as np
import onnxruntime as ort

from emotion_runtime.voiceprint import open_session

from .face_alignment import FER_TEMPLATE, similarity_transform
from .face_detection import Detection, _unique
from .mtcnn_detection import _nms, default_model_dir
from .scan_schedule import ScanRegion, searchable

__all__ = ['YunetFaceDetector', 'MODEL_FILE', 'MODEL_SHA256']

MODEL_FILE = 'face_detection_yunet_2023mar.onnx'
#: OpenCV Zoo's published hash of the file (its Git LFS pointer); anything else is refused
MODEL_SHA256 = '8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4'
STRIDES = (8, 16, 32)
#: a whole-frame scan runs on the frame scaled so that its short side is this (never enlarged)
WHOLE_FRAME_SIDE = 320
#: a window is scaled so that the largest face it looks for is at most this many px
WINDOW_MAX_FACE = 256
#: ... and, within that, the smallest at least this many px (small faces searched enlarged)
WINDOW_MIN_FACE = 64
#: where YuNet puts the five landmarks in a FER2013 crop, as fractions of its side (measured as
#: ``face_alignment.FER_TEMPLATE`` is for MTCNN, on the same 2,000 FER2013 training faces: found
#: on 1,857, 1,423 kept; training/scripts/derive_face_template.py --detector yunet).  Against
#: MTCNN's, its eyes sit ~0.02 of the crop higher and to the image's left, its mouth ~0.03 higher.
YUNET_TEMPLATE = np.array([[0.2996, 0.3729],
                           [0.6895, 0.3840],
                           [0.4765, 0.5851],
                           [0.3338, 0.7623],
                           [0.6489, 0.7685]], np.float64)


def to_mtcnn_landmarks(points: np.ndarray) -> np.ndarray:
    """YuNet's five landmarks [5, 2] of one face moved to where MTCNN puts them: each point by
    the difference of the two detectors' templates (``FER_TEMPLATE`` - ``YUNET_TEMPLATE``),
    carried into the image by the similarity that maps ``YUNET_TEMPLATE`` onto the face's points
    (so a turned or scaled face gets the difference turned and scaled with it)."""
    m = similarity_transform(YUNET_TEMPLATE, points)
    return points + (FER_TEMPLATE - YUNET_TEMPLATE) @ m[:, :2].T


def _open_session(path: pathlib.Path, threads: int) -> ort.InferenceSession:
    """The checked file, its input height and width made free, as an onnxruntime session."""
    if not path.is_file():
        raise ValueError(f'YuNet model file {path} not found')
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        raise ValueError(f'YuNet model file {path} is not the official one (sha256 {digest}, '
                         f'expected {MODEL_SHA256})')
    import onnx  # noqa: PLC0415 - only where YuNet is chosen
    model = onnx.load_from_string(data)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = 'height', 'width'
    for out in model.graph.output:
        out.type.tensor_type.shape.dim[1].dim_param = 'cells'
    return open_session(path, threads, model.SerializeToString())


def _decode(outputs: dict, height: int, width: int, min_score: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Net outputs of a padded (height, width) input -> boxes [N, 4] x1 y1 x2 y2, scores [N],
    landmarks [N, 5, 2] (the net's order), in input pixels, scores >= ``min_score`` only."""
    boxes, scores, points = [], [], []
    for s in STRIDES:
        rows, cols = height // s, width // s
        cls = np.clip(outputs[f'cls_{s}'].reshape(-1), 0.0, 1.0)
        obj = np.clip(outputs[f'obj_{s}'].reshape(-1), 0.0, 1.0)
        score = np.sqrt(cls * obj)
        idx = np.nonzero(score >= min_score)[0]
        if idx.size == 0:
            continue
        r, c = (idx // cols).astype(np.float32), (idx % cols).astype(np.float32)
        bb = outputs[f'bbox_{s}'].reshape(rows * cols, 4)[idx]
        kp = outputs[f'kps_{s}'].reshape(rows * cols, 10)[idx]
        cx, cy = (c + bb[:, 0]) * s, (r + bb[:, 1]) * s
        w, h = np.exp(bb[:, 2]) * s, np.exp(bb[:, 3]) * s
        boxes.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1))
        scores.append(score[idx])
        points.append(np.stack([(kp[:, 0::2] + c[:, None]) * s,
                                (kp[:, 1::2] + r[:, None]) * s], 2))
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2))
    return np.concatenate(boxes), np.concatenate(scores), np.concatenate(points)


class YunetFaceDetector:
    """YuNet behind HaarFaceDetector's interface: ``detect(image, regions)`` and ``clone()``.

    ``score_threshold``: the score (sqrt(cls * obj)) a face needs (0.7: OpenCV Zoo's 0.9 finds
    23 % of bench_detection's faces; 0.7 finds the most within its limit of one false detection
    per 1,000 face-free frames); ``square``: report the box made square about its centre,
    as MtcnnFaceDetector does.
    """

    def __init__(self, model_dir: Optional[str] = None, min_face_size: int = 48,
                 score_threshold: float = 0.7, nms_threshold: float = 0.3, threads: int = 1,
                 square: bool = True, whole_frame_side: int = WHOLE_FRAME_SIDE,
                 mtcnn_landmarks: bool = True,
                 _session: Optional[ort.InferenceSession] = None) -> None:
        if min_face_size < 8:
            raise ValueError(f'min_face_size must be >= 8 px for YuNet, got {min_face_size}')
        if not 0.0 < score_threshold <= 1.0:
            raise ValueError(f'YuNet score_threshold must be in (0, 1], got {score_threshold}')
        if not 0.0 < nms_threshold <= 1.0:
            raise ValueError(f'YuNet nms_threshold must be in (0, 1], got {nms_threshold}')
        self.model_dir = pathlib.Path(model_dir) if model_dir else default_model_dir()
        self._session = _session or _open_session(self.model_dir / MODEL_FILE, threads)
        self._outputs = [o.name for o in self._session.get_outputs()]
        self.min_face_size, self.score_threshold = int(min_face_size), float(score_threshold)
        self.nms_threshold, self.threads, self.square = float(nms_threshold), threads, square
        self.whole_frame_side = int(whole_frame_side)
        self.mtcnn_landmarks = bool(mtcnn_landmarks)

    def clone(self) -> 'YunetFaceDetector':
        """The same settings for another thread (the onnxruntime session is shared)."""
        return YunetFaceDetector(str(self.model_dir), self.min_face_size, self.score_threshold,
                                 self.nms_threshold, self.threads, self.square,
                                 self.whole_frame_side, self.mtcnn_landmarks,
                                 _session=self._session)

    def detect(self, image: np.ndarray,
               regions: Optional[Sequence[ScanRegion]] = None) -> list[Detection]:
        """Faces in a uint8 BGR or grey image, largest first, with five landmarks each.
        ``regions`` limits the search to those parts of the frame and face sizes; None scans
        the whole frame from ``min_face_size`` up."""
        if image is None or image.size == 0:
            return []
        bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image
        h, w = bgr.shape[:2]
        if regions is None:
            scale = min(1.0, self.whole_frame_side / float(min(h, w)))
            return self._search(bgr, (0, 0, w, h), scale, float(self.min_face_size), math.inf)
        out: list[Detection] = []
        for rect, lo, hi in searchable(regions, w, h, self.min_face_size):
            scale = min(WINDOW_MAX_FACE / hi, max(1.0, WINDOW_MIN_FACE / lo))
            out += self._search(bgr, rect, scale, lo, hi)
        return _unique(out)

    def _search(self, bgr: np.ndarray, rect: tuple, scale: float, lo: float,
                hi: float) -> list[Detection]:
        x0, y0, x1, y1 = rect
        crop = bgr[y0:y1, x0:x1]
        if scale != 1.0:
            crop = cv2.resize(crop, (max(1, int(round((x1 - x0) * scale))),
                                     max(1, int(round((y1 - y0) * scale)))),
                              interpolation=cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR)
        ch, cw = crop.shape[:2]
        ph, pw = -(-ch // 32) * 32, -(-cw // 32) * 32
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :ch, :cw] = crop.transpose(2, 0, 1)
        outputs = dict(zip(self._outputs, self._session.run(None, {'input': blob})))
        boxes, scores, points = _decode(outputs, ph, pw, self.score_threshold)
        keep = _nms(boxes, scores, self.nms_threshold)
        sx, sy = (x1 - x0) / float(cw), (y1 - y0) / float(ch)
        out = []
        for i in keep:
            bx1, by1, bx2, by2 = boxes[i]
            x, y = x0 + bx1 * sx, y0 + by1 * sy
            bw, bh = (bx2 - bx1) * sx, (by2 - by1) * sy
            if bw <= 1 or bh <= 1:
                continue
            if self.square:
                side = max(bw, bh)
                x, y, bw, bh = x + bw / 2 - side / 2, y + bh / 2 - side / 2, side, side
            side, cx, cy = max(bw, bh), x + bw / 2, y + bh / 2
            if not (lo <= side <= hi and x0 <= cx <= x1 and y0 <= cy <= y1):
                continue
            pts = np.stack([x0 + points[i][:, 0] * sx, y0 + points[i][:, 1] * sy], 1)
            if self.mtcnn_landmarks:
                pts = to_mtcnn_landmarks(pts)
            out.append(Detection(float(x), float(y), float(bw), float(bh), float(scores[i]),
                                 tuple((float(px), float(py)) for px, py in pts)))
        out.sort(key=lambda d: d.w * d.h, reverse=True)
        return out
