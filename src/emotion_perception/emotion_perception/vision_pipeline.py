"""The face path of one frame: detect -> track -> crop -> encode (batched), without ROS.

Why here and not in face_node: the bench measures exactly this code per frame, and the unit tests
run it on real photos; face_node only converts messages around it.  The model is optional: with
no bundle (missing or corrupt) faces are still detected and tracked, and ``features`` is empty.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import cv2
import numpy as np

from .background_scan import BackgroundScan, DeferredScan
from .face_alignment import align_face
from .face_detection import HaarFaceDetector, SplitDetector, _unique, iou
from .face_tracking import FaceTracker
from .mtcnn_detection import DEFAULT_THRESHOLDS, MtcnnFaceDetector
from .scan_schedule import ScanSchedule
from .turned_search import with_turned_search
from .yunet_detection import YunetFaceDetector

__all__ = ['EncodeGate', 'FrameResult', 'FacePipeline', 'LookMemory', 'build_detector',
           'build_face_pipeline', 'crop_face', 'draw_debug', 'thumbnail']


@dataclass
class FrameResult:
    tracks: list                          # list[Track] visible in this frame
    embeddings: Optional[np.ndarray]      # [N, E] or None without a model
    logits: Optional[np.ndarray]          # [N, C] or None
    timings: dict = field(default_factory=dict)   # stage -> seconds
    model_error: str = ''
    full_scan: bool = True                # whole frame scanned in line (else windows only)
    # the tracks whose rows ``embeddings`` and ``logits`` hold, in order: all of ``tracks``
    # unless ``max_encode_rate_hz`` held some back this frame (or without a model: none)
    encoded: list = field(default_factory=list)


def crop_face(image: np.ndarray, box: tuple, margin: float = 0.1) -> np.ndarray:
    """The box grown by ``margin`` of its size on each side, clipped to the image."""
    x, y, w, h = box
    mx, my = w * margin, h * margin
    x0, y0 = int(max(0, np.floor(x - mx))), int(max(0, np.floor(y - my)))
    x1 = int(min(image.shape[1], np.ceil(x + w + mx)))
    y1 = int(min(image.shape[0], np.ceil(y + h + my)))
    return image[y0:y1, x0:x1]


class FacePipeline:
    """Detector + tracker + optional ModelBundle, one call per frame.

    With a ``ScanSchedule`` the detector searches most frames only around the faces of the
    previous frame; without one (None) it scans every whole frame.  With ``background`` as well,
    a whole-frame scan that falls due while faces are in view runs on a worker thread instead of
    in line (``background_scan``).  ``close()`` stops that thread.  ``scan_thread=False`` runs
    that scan at once instead and hands its faces to the next frame (``DeferredScan``: the node's
    timing when the worker keeps up, reproducibly; what ``emotion-eval bag`` runs).
    ``align_faces``: a face whose detection has landmarks (MTCNN) is cropped by
    ``face_alignment.align_face`` (upright, FER2013 geometry) instead of its box; without
    landmarks (Haar) the box crop stays.  ``aligned_crops`` counts the aligned ones.
    ``align_keep_roll``: roll [deg] an aligned crop keeps (only the excess is turned upright;
    ``face_alignment.align_face``'s ``keep_roll_deg``).
    ``identity_threshold`` > 0: a track whose crop no longer looks like it did (``LookMemory``:
    normalised correlation of 16x16 grey thumbnails below the threshold against every look of
    the track's recent frames, ``identity_confirm`` frames in a row: another person now stands
    where the tracked one stood, which box overlap alone cannot tell) gets a new id
    (``FaceTracker.reidentify``), so per-face state downstream (fusion's LSTM) starts afresh.
    ``max_encode_rate_hz`` > 0: each track is encoded at most that often (``EncodeGate``); the
    frames in between detect, track and check identity as usual but encode only the tracks that
    are due (``FrameResult.encoded``).  ``last_logits`` holds each visible track's newest logits.
    """

    def __init__(self, detector: Any, tracker: FaceTracker,
                 bundle: Any = None, crop_margin: float = 0.1, max_faces: int = 8,
                 schedule: Optional[ScanSchedule] = None, background: bool = False,
                 scan_thread: bool = True, align_faces: bool = False,
                 align_keep_roll: float = 0.0, identity_threshold: float = 0.0,
                 identity_confirm: int = 1, max_encode_rate_hz: float = 0.0) -> None:
        self.detector, self.tracker, self.bundle = detector, tracker, bundle
        self.crop_margin, self.max_faces = crop_margin, max_faces
        self.align_faces, self.aligned_crops = bool(align_faces), 0
        self.align_keep_roll = float(align_keep_roll)
        self.looks = LookMemory(identity_threshold, identity_confirm)
        self.identity_changes = 0
        self.gate = EncodeGate(max_encode_rate_hz)
        self.last_logits: dict = {}
        self.schedule = schedule
        self.background = ((BackgroundScan if scan_thread else DeferredScan)(detector)
                           if background and schedule is not None else None)
        self.model_failures = 0

    def _detect(self, image: np.ndarray) -> tuple[list, bool]:
        """This frame's detections, and whether the whole frame was scanned in line."""
        if self.schedule is None or image is None or image.ndim < 2 or image.size == 0:
            return self.detector.detect(image), True
        h, w = image.shape[:2]
        entered = self.background.take() if self.background is not None else []
        boxes = self.tracker.last_frame_boxes()
        regions = self.schedule.plan(w, h, boxes)
        if regions is None and boxes and self.background is not None:
            self.background.submit(image)          # finds entering faces; this frame: windows
            regions = self.schedule.windows(w, h, boxes)
        if regions is None:
            return self.detector.detect(image), True
        # faces the background scan found that no window follows yet
        new = [d.box for d in entered if all(iou(d.box, b) < 0.3 for b in boxes)]
        detections = self.detector.detect(image, regions + self.schedule.windows(w, h, new))
        if self.schedule.needs_whole_scan(regions, detections):
            # the windows' faces are kept: a turned whole scan (turned_search) may miss them
            return _unique(detections + self.detector.detect(image)), True
        return detections, False

    def process(self, image: np.ndarray, stamp: float) -> FrameResult:
        """All faces of one uint8 BGR frame captured at ``stamp`` seconds."""
        t0 = time.perf_counter()
        detections, whole = self._detect(image)
        detections = detections[:self.max_faces]
        t1 = time.perf_counter()
        tracks = self.tracker.update(detections, stamp)
        t2 = time.perf_counter()
        result = FrameResult(tracks, None, None, {'detect': t1 - t0, 'track': t2 - t1},
                             full_scan=whole)
        check = self.looks.threshold > 0.0
        if (self.bundle is not None or check) and tracks:
            marks = {d.box: d.landmarks for d in detections} if self.align_faces else {}
            crops = [self._crop(image, t.box, marks.get(t.box)) for t in tracks]
            crops = [c for c in crops if c.shape[0] >= 2 and c.shape[1] >= 2]
            if check and len(crops) == len(tracks):
                self._check_identity(tracks, crops)
            if self.bundle is not None and len(crops) == len(tracks):
                due = [k for k, t in enumerate(tracks) if self.gate.due(t.id, stamp)]
                try:
                    result.embeddings, result.logits = self.bundle.encode_faces(
                        [crops[k] for k in due])
                except Exception as exc:  # noqa: BLE001 - a model failure must not stop tracking
                    self.model_failures += 1
                    result.model_error = f'{type(exc).__name__}: {exc}'
                else:
                    result.encoded = [tracks[k] for k in due]
                    for t, z in zip(result.encoded, result.logits):
                        self.gate.encoded(t.id, stamp)
                        self.last_logits[t.id] = z
            visible = {t.id for t in tracks}
            self.gate.keep(visible)
            self.last_logits = {k: v for k, v in self.last_logits.items() if k in visible}
        result.timings['encode'] = time.perf_counter() - t2
        result.timings['total'] = time.perf_counter() - t0
        return result

    @property
    def identity_threshold(self) -> float:
        return self.looks.threshold

    @identity_threshold.setter
    def identity_threshold(self, value: float) -> None:
        self.looks.threshold = float(value)

    def _check_identity(self, tracks: list, crops: list) -> None:
        """New ids for tracks whose face changed into another (``identity_threshold``)."""
        for t, crop in zip(tracks, crops):
            old = t.id
            if self.looks.changed(old, thumbnail(crop)):
                self.looks.rename(old, self.tracker.reidentify(t))
                self.identity_changes += 1
        # ids not seen this frame keep their looks while the tracker keeps them
        self.looks.keep({t.id for t in self.tracker.confirmed()})

    def _crop(self, image: np.ndarray, box: tuple, landmarks: Optional[tuple]) -> np.ndarray:
        """The encoder's crop of one face: aligned on its landmarks where known (and
        ``align_faces``), else the box with ``crop_margin``.  (A track visible in this frame has
        its detection's exact box, which finds that detection's landmarks.)"""
        if landmarks is not None:
            self.aligned_crops += 1
            return align_face(image, landmarks, keep_roll_deg=self.align_keep_roll)
        return crop_face(image, box, self.crop_margin)

    def set_detector_setting(self, attr: str, value: Any) -> bool:
        """Set a detector setting (``min_confidence``, ``pnet_threshold``, ``rnet_threshold``,
        ``low_light_gain``, ``score_threshold``, ``min_face_size``, ``min_neighbors``) on the
        detector and on the background scan's copy, inside a ``TurnedSearch`` if there is one,
        on either part of a ``SplitDetector``; False when this detector has no such setting (a
        Haar-only one on MTCNN)."""
        worker = getattr(self.background, '_detector', None)
        targets = [getattr(d, 'base', d) for d in (self.detector, worker) if d is not None]
        targets = [part for d in targets for part in getattr(d, 'parts', (d,))]
        targets = [d for d in targets if hasattr(d, attr)]
        for d in targets:
            setattr(d, attr, value)
        return bool(targets)

    def close(self) -> None:
        """Stop the background scan's thread (if any)."""
        if self.background is not None:
            self.background.close()


class EncodeGate:
    """Which tracks are due to be encoded at a frame: each at most ``rate_hz`` times per second
    (0 = every frame).  A track is due when it has not been encoded yet (a new or re-identified
    id), when at least 0.75 / ``rate_hz`` s passed since its last encoding (so a 30 fps camera
    encodes every second frame at 15 Hz despite stamp jitter, and a 15 fps one every frame), or
    when the stamps went backwards (a replay restarted)."""

    def __init__(self, rate_hz: float = 0.0) -> None:
        self.rate_hz = float(rate_hz)
        self._last: dict[str, float] = {}
        self.held_back = 0                   # track-frames not encoded, for /diagnostics

    def due(self, track_id: str, stamp: float) -> bool:
        if self.rate_hz <= 0.0:
            return True
        last = self._last.get(track_id)
        if last is None or stamp < last or stamp - last >= 0.75 / self.rate_hz:
            return True
        self.held_back += 1
        return False

    def encoded(self, track_id: str, stamp: float) -> None:
        """``track_id`` was encoded at ``stamp``."""
        self._last[track_id] = stamp

    def keep(self, ids: set) -> None:
        """Forget the tracks not in ``ids``."""
        self._last = {k: v for k, v in self._last.items() if k in ids}


class LookMemory:
    """Whether a track's face is still the one it was: its crops' thumbnails (``thumbnail``)
    against the looks of its recent frames.

    A look that correlates with one of the track's last ``size`` accepted looks at
    ``threshold`` or above is the same face, and is kept.  One that matches none waits; when
    ``confirm`` such looks come in a row and each correlates with the one before it, another face
    stands in the track's place (``changed`` is True), and they become the new id's looks.  Why
    not only the previous frame: the detector can alternate between two framings of one face
    (MTCNN on a hand over the face, a strong turn), and each switch looked like a new person,
    so one person got a new id every few frames (86 ids in one 4 s segment of a bag) and
    fusion's state kept starting afresh; a look seen once between matching ones is remembered
    as this track's.  ``threshold`` 0 turns the check off.
    """

    def __init__(self, threshold: float, confirm: int = 1, size: int = 16) -> None:
        if confirm < 1 or size < 1:
            raise ValueError(f'identity_confirm ({confirm}) and the memory size ({size}) must '
                             'be >= 1')
        self.threshold, self.confirm, self.size = float(threshold), int(confirm), int(size)
        self._looks: dict[str, list] = {}       # id -> accepted looks, newest last
        self._waiting: dict[str, list] = {}     # id -> looks in a row that matched none

    def changed(self, track_id: str, look: np.ndarray) -> bool:
        looks = self._looks.setdefault(track_id, [])
        waiting = self._waiting.setdefault(track_id, [])
        if not looks or max(float(m @ look) for m in looks) >= self.threshold:
            looks.extend(waiting + [look])          # a look seen between matching ones: kept
            del looks[:-self.size]
            waiting.clear()
            return False
        if waiting and float(waiting[-1] @ look) < self.threshold:
            waiting.clear()                         # not one face either: count afresh
        waiting.append(look)
        return len(waiting) >= self.confirm

    def rename(self, old: str, new: str) -> None:
        """After ``changed``: the looks that made the change are the new id's."""
        self._looks[new] = self._waiting.pop(old, [])[-self.size:]
        self._looks.pop(old, None)

    def keep(self, ids: set) -> None:
        """Forget the tracks that ended."""
        for memory in (self._looks, self._waiting):
            for k in [k for k in memory if k not in ids]:
                del memory[k]


def thumbnail(crop: np.ndarray, side: int = 16) -> np.ndarray:
    """A crop as a zero-mean unit-norm vector of its ``side`` x ``side`` grey thumbnail (the dot
    product of two is their normalised correlation, in [-1, 1])."""
    grey = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    v = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    v -= v.mean()
    return v / max(float(np.linalg.norm(v)), 1e-6)


def build_detector(p: Mapping[str, Any]) -> Any:
    """The face detector that ``p['face_detector']`` names (``mtcnn`` when the key is absent:
    parameter tables from before the choice existed), searching turned copies of the frame too
    when ``p['turned_search_deg']`` > 0 (``turned_search``).  Raises ValueError naming a bad
    value."""
    kind = p.get('face_detector', 'mtcnn')

    def mtcnn() -> MtcnnFaceDetector:
        return MtcnnFaceDetector(min_face_size=p['min_face_size'],
                                 thresholds=(p.get('mtcnn_pnet_threshold', DEFAULT_THRESHOLDS[0]),
                                             p.get('mtcnn_rnet_threshold', DEFAULT_THRESHOLDS[1]),
                                             DEFAULT_THRESHOLDS[2]),
                                 min_confidence=p.get('mtcnn_min_confidence', 0.9),
                                 low_light_gain=p.get('mtcnn_low_light_gain', 4.0))

    def yunet() -> YunetFaceDetector:
        return YunetFaceDetector(min_face_size=p['min_face_size'],
                                 score_threshold=p.get('yunet_score_threshold', 0.7))

    if kind == 'mtcnn':
        det = mtcnn()
    elif kind == 'yunet':
        det = yunet()
    elif kind == 'mtcnn_yunet':
        det = SplitDetector(mtcnn(), yunet())
    elif kind == 'haar':
        det = HaarFaceDetector(p['cascade'], p['detection_scale'], p['scale_factor'],
                               p['min_neighbors'], p['min_face_size'])
    else:
        raise ValueError("face_detector must be 'mtcnn', 'yunet', 'mtcnn_yunet' or 'haar', got "
                         f'{kind!r}')
    return with_turned_search(det, float(p.get('turned_search_deg', 0.0)))


def build_face_pipeline(p: Mapping[str, Any], bundle: Any = None,
                        scan_thread: bool = True) -> FacePipeline:
    """The pipeline face_node runs, from its parameter table (``node_params.FACE_PARAMS`` names);
    ``emotion-eval bag`` builds it the same way so offline numbers are the robot's (with
    ``scan_thread=False``: the background scan's timing without its thread).  Raises
    ValueError naming a bad value."""
    detector = build_detector(p)
    tracker = FaceTracker(p['iou_threshold'], p['max_center_shift'], p['lost_timeout'],
                          min_hits=p['min_hits'])
    schedule = ScanSchedule(p['full_scan_every'], p['track_search_margin'])
    return FacePipeline(detector, tracker, bundle, p['crop_margin'], p['max_faces'], schedule,
                        background=p['background_scan'], scan_thread=scan_thread,
                        align_faces=p.get('align_faces', False),
                        align_keep_roll=p.get('align_keep_roll', 0.0),
                        identity_threshold=p.get('identity_threshold', 0.0),
                        identity_confirm=p.get('identity_confirm', 1),
                        max_encode_rate_hz=p.get('max_encode_rate_hz', 0.0))


def draw_debug(image: np.ndarray, tracks: list, labels: Optional[list] = None,
               logits: Optional[list] = None) -> np.ndarray:
    """A copy of the frame with each face's box, id and (if known) its top label: ``logits``
    holds one row (or None) per track."""
    out = image.copy()
    for i, t in enumerate(tracks):
        x, y, w, h = (int(round(v)) for v in t.box)
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 255, 0), 2)
        text = t.id
        if labels is not None and logits is not None and i < len(logits) and \
                logits[i] is not None:
            text += f' {labels[int(np.argmax(logits[i]))]}'
        cv2.putText(out, text, (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 255, 0), 1, cv2.LINE_AA)
    return out
