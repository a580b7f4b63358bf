"""The default face detector (MTCNN, shipped ONNX nets) behind the Haar detector's interface:
whole-frame and windowed search, landmarks, the pipeline and its background scan."""
import threading

import cv2
import numpy as np
import pytest
from perception_media import FRAME_H, FRAME_W, astronaut_face_patch, moving_face_frames

from emotion_perception.face_detection import HaarFaceDetector, iou
from emotion_perception.face_tracking import FaceTracker
from emotion_perception.mtcnn_detection import MtcnnFaceDetector
from emotion_perception.scan_schedule import ScanRegion, ScanSchedule
from emotion_perception.vision_pipeline import FacePipeline, build_detector, build_face_pipeline


@pytest.fixture(scope='module')
def detector():
    cv2.setNumThreads(1)
    return MtcnnFaceDetector()


def test_finds_the_astronaut_with_five_landmarks_and_nothing_in_a_face_free_photo(detector):
    from skimage import data
    (d,) = detector.detect(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    assert iou(d.box, (177, 66, 97, 97)) > 0.5 and 0.9 <= d.confidence <= 1.0
    assert len(d.landmarks) == 5
    (le, re, nose, lm, rm) = d.landmarks
    assert le[0] < nose[0] < re[0] and lm[0] < rm[0]           # eyes and mouth either side
    assert max(le[1], re[1]) < nose[1] < min(lm[1], rm[1])      # eyes above nose above mouth
    assert all(d.x <= x <= d.x + d.w and d.y <= y <= d.y + d.h for x, y in d.landmarks)
    assert detector.detect(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)) == []
    assert detector.detect(np.zeros((0, 0, 3), np.uint8)) == []
    grey = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    assert len(detector.detect(grey)) == 1


LFW_BOX = (250, 150, 100, 100)


def _lfw_frames(indices):
    """LFW faces (scikit-image) pasted at 100 px (``LFW_BOX``) on a flat light grey 640x480
    frame, one frame per index."""
    from skimage import data
    lfw = data.lfw_subset()
    frames = []
    for i in indices:
        frame = np.full((FRAME_H, FRAME_W, 3), 150, np.uint8)
        face = cv2.cvtColor((lfw[i] * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
        frame[150:250, 250:350] = cv2.resize(face, (100, 100))
        frames.append(frame)
    return frames


def _dark_lfw_frames(indices, factor=0.25):
    """``_lfw_frames`` and the same darkened as bench_detection's low light (x factor, noise
    sigma 3): (bright frames, dark frames, box)."""
    bright = _lfw_frames(indices)
    dark = [np.clip(f * factor + np.random.default_rng(i).normal(0, 3, f.shape), 0, 255)
            .astype(np.uint8) for i, f in zip(indices, bright)]
    return bright, dark, LFW_BOX


def test_dark_frames_are_brightened_for_the_detector_only_when_dark():
    # nine faces MTCNN finds in the bright frame; dark, the nets see a quarter of the contrast
    bright, dark, box = _dark_lfw_frames([4, 5, 7, 13, 20, 21, 27, 30, 32])
    off, on = MtcnnFaceDetector(low_light_gain=1.0), MtcnnFaceDetector()

    def hits(det, frames, regions=None):
        return sum(any(iou(d.box, box) > 0.4 for d in det.detect(f, regions)) for f in frames)

    assert hits(off, bright) == 9
    assert hits(on, bright) == 9 and on.brightened == 0
    assert hits(off, dark) <= 2 and off.brightened == 0
    assert hits(on, dark) >= 8 and on.brightened == 9
    # a window around the face: the window's own pixels decide
    window = [ScanRegion(200, 100, 400, 300, 60, 160)]
    in_window = hits(on, dark, window)
    assert in_window >= 8 and on.brightened == 18
    assert hits(off, dark, window) < in_window
    # the detector works on its own copy: the caller's frame is untouched
    before = dark[0].copy()
    on.detect(dark[0])
    assert np.array_equal(dark[0], before)
    assert on.clone().low_light_gain == 4.0
    with pytest.raises(ValueError, match='low_light_gain'):
        MtcnnFaceDetector(low_light_gain=0.5)


def test_default_pipeline_is_mtcnn_and_follows_the_moving_face_with_windows():
    from emotion_perception.node_params import FACE_PARAMS
    p = {s.name: s.default for s in FACE_PARAMS}
    assert p['face_detector'] == 'mtcnn'
    pipe = build_face_pipeline(dict(p, background_scan=False))
    assert isinstance(pipe.detector.base, MtcnnFaceDetector)     # inside the turned search
    tracks = [pipe.process(f, i / 30.0).tracks for i, f in enumerate(moving_face_frames(60))]
    assert sum(map(len, tracks)) >= 57
    assert {t.id for ts in tracks for t in ts} == {'f1'}
    assert pipe.schedule.full_scan_fraction < 0.4
    assert isinstance(build_detector(dict(p, face_detector='haar')).base, HaarFaceDetector)
    with pytest.raises(ValueError, match='face_detector'):
        build_detector(dict(p, face_detector='hog'))


def test_background_scan_with_mtcnn_finds_an_entering_face(detector):
    patch = astronaut_face_patch(200)
    pipe = FacePipeline(detector, FaceTracker(min_hits=2), None, schedule=ScanSchedule(5),
                        background=True)
    try:
        first_seen, in_line = {}, []
        for i in range(20):
            frame = np.full((FRAME_H, FRAME_W, 3), 100, np.uint8)
            frame[20:220, 20:220] = patch
            if i >= 7:
                frame[260:460, 420:620] = cv2.flip(patch, 1)
            r = pipe.process(frame, i / 30.0)
            in_line.append(r.full_scan)
            pipe.background.wait(10.0)
            for t in r.tracks:
                first_seen.setdefault(t.id, i)
        assert set(first_seen) == {'f1', 'f2'} and first_seen['f2'] <= 7 + 5 + 2
        assert in_line[0] and not any(in_line[1:])
        assert pipe.background.failures == 0
    finally:
        pipe.close()


def test_clone_shares_the_nets_and_runs_in_parallel(detector):
    frames = moving_face_frames(6)
    want = [detector.detect(f)[0].box for f in frames]
    other = detector.clone()
    got = [None] * len(frames)

    def run(i):
        got[i] = other.detect(frames[i])[0].box
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(frames))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert got == want


def test_bad_settings_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match='min_face_size'):
        MtcnnFaceDetector(min_face_size=4)
    with pytest.raises(ValueError, match='not found'):
        MtcnnFaceDetector(str(tmp_path))


class _CountingSession:
    """An onnxruntime session that counts the crops it is given."""

    def __init__(self, session) -> None:
        self.session, self.crops = session, 0

    def run(self, outputs, feeds):
        self.crops += next(iter(feeds.values())).shape[0]
        return self.session.run(outputs, feeds)


def test_windows_send_onet_their_best_candidates_first_and_the_rest_only_if_needed(
        detector, monkeypatch):
    from emotion_perception import mtcnn_detection
    frames = moving_face_frames(6)[::2]
    windows = []
    for f in frames:
        (whole,) = detector.detect(f)
        windows.append(ScanSchedule(5).windows(FRAME_W, FRAME_H, [whole.box]))

    def run(first: int):
        det = detector.clone()
        det._onet = _CountingSession(det._onet)
        monkeypatch.setattr(mtcnn_detection, 'ONET_FIRST', first)
        found = [det.detect(f, w) for f, w in zip(frames, windows)]
        return found, det._onet.crops

    every, crops_all = run(1000)
    best, crops_best = run(2)
    fallback, crops_fallback = run(0)       # a first round that finds nothing: all the rest
    assert crops_best <= 2 * len(frames) < crops_all          # ~2 crops a window, not ~7
    assert crops_fallback == crops_all                        # 2 first, then the others
    for a, b, c in zip(every, best, fallback):
        assert len(a) == len(b) == len(c) == 1
        assert iou(a[0].box, b[0].box) > 0.8 and iou(a[0].box, c[0].box) > 0.99
        assert np.abs(np.subtract(a[0].landmarks, b[0].landmarks)).max() < 6.0


def test_two_faces_with_overlapping_windows_each_keep_their_own_candidates(detector):
    head = astronaut_face_patch(160)[:, 25:105]              # the face and a little around it
    frame = np.full((FRAME_H, FRAME_W, 3), 100, np.uint8)
    frame[150:310, 200:280] = head
    frame[150:310, 282:362] = cv2.flip(head, 1)
    whole = detector.detect(frame)
    assert len(whole) == 2
    windows = ScanSchedule(5).windows(FRAME_W, FRAME_H, [d.box for d in whole])
    assert windows[0].contains_centre(whole[1].box) or windows[1].contains_centre(whole[0].box)
    found = detector.detect(frame, windows)
    assert len(found) == 2
    assert all(max(iou(f.box, w.box) for f in found) > 0.8 for w in whole)


@pytest.mark.parametrize('int32_pixels', [None, 0], ids=['int32 integral', 'float64 integral'])
def test_pyramid_levels_are_opencvs_area_reduction(monkeypatch, int32_pixels):
    """The pyramid's levels from the integral match cv2.resize(INTER_AREA) to the rounding, for
    colour and grey images, frame-sized and window-sized; whole-number ratios and enlargements
    are OpenCV's own."""
    from emotion_perception import mtcnn_detection as md
    if int32_pixels is not None:
        monkeypatch.setattr(md._AreaPyramid, 'INT32_PIXELS', int32_pixels)
    rng = np.random.default_rng(3)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (FRAME_H, FRAME_W, 3), np.uint8), (0, 0), 1.5)
    views = [frame, frame[37:337, 101:389], cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)]
    from_integral = 0
    for image in views:
        h, w = image.shape[:2]
        for s in (0.3, 0.2, 0.13, 0.09, 0.05, 0.5, 1.0):
            size = (int(w * s + 1), int(h * s + 1))
            want = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            pyramid = md._AreaPyramid(image)
            got = pyramid.level(*size)
            from_integral += pyramid._flat is not None
            assert got.shape == want.shape
            diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (image.shape, size)
        half = md._AreaPyramid(image)
        assert np.array_equal(half.level(w // 2, h // 2),
                              cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA))
        assert half._flat is None                                  # a whole ratio: OpenCV's
    assert from_integral >= 9                  # most levels of each view came from the integral


def _turned_lfw_frames(indices, angle=25.0):
    """``_lfw_frames`` turned by ``angle`` about the face's centre: (frames, box)."""
    turn = cv2.getRotationMatrix2D((300, 200), angle, 1.0)
    return [cv2.warpAffine(f, turn, (FRAME_W, FRAME_H), borderMode=cv2.BORDER_REFLECT)
            for f in _lfw_frames(indices)], LFW_BOX


def test_proposal_thresholds_reach_the_detector_live_and_lower_ones_find_more_faces():
    from emotion_perception.node_params import FACE_PARAMS
    p = dict({s.name: s.default for s in FACE_PARAMS}, face_detector='mtcnn')
    assert (p['mtcnn_pnet_threshold'], p['mtcnn_rnet_threshold']) == (0.6, 0.7)
    loose = dict(p, mtcnn_pnet_threshold=0.3, mtcnn_rnet_threshold=0.4, mtcnn_min_confidence=0.95)
    assert build_detector(loose).base.thresholds == (0.3, 0.4, 0.7)
    assert build_detector(p).base.thresholds == (0.6, 0.7, 0.7)
    # turned LFW faces whose candidates PNet/RNet drop at facenet-pytorch's thresholds
    frames, box = _turned_lfw_frames([1, 7, 10, 21, 39, 40, 54, 56, 61])
    default, lower = MtcnnFaceDetector(), MtcnnFaceDetector(thresholds=(0.3, 0.4, 0.7),
                                                            min_confidence=0.95)

    def hits(det):
        return sum(any(iou(d.box, box) > 0.4 for d in det.detect(f)) for f in frames)
    assert hits(default) == 0
    assert hits(lower) >= 7
    # live: face_node's parameter callback sets both thresholds on the detector and on the
    # background scan's copy, and the lowered ones find what the lower detector finds
    pipe = build_face_pipeline(dict(p, turned_search_deg=0.0))
    try:
        assert pipe.set_detector_setting('pnet_threshold', 0.3)
        assert pipe.set_detector_setting('rnet_threshold', 0.4)
        assert pipe.set_detector_setting('min_confidence', 0.95)
        worker = pipe.background._detector
        assert pipe.detector.thresholds == worker.thresholds == (0.3, 0.4, 0.7)
        assert hits(pipe.detector) == hits(lower)
    finally:
        pipe.close()
    with pytest.raises(ValueError, match='stage thresholds'):
        default.pnet_threshold = 1.0
    with pytest.raises(ValueError, match='stage thresholds'):
        MtcnnFaceDetector(thresholds=(0.6, 0.7))
    assert default.thresholds == (0.6, 0.7, 0.7)
