"""YuNet (``face_detector: yunet``, OpenCV Zoo's shipped ONNX file) behind the detector
interface: the file's hash, whole-frame and windowed search at any frame size, landmarks in
MTCNN's order, the pipeline choice and its live threshold."""
import shutil

import cv2
import numpy as np
import pytest
from perception_media import FRAME_H, FRAME_W, astronaut_face_patch, moving_face_frames

from emotion_perception.face_detection import iou
from emotion_perception.mtcnn_detection import MtcnnFaceDetector, default_model_dir
from emotion_perception.vision_pipeline import build_detector, build_face_pipeline
from emotion_perception.yunet_detection import MODEL_FILE, MODEL_SHA256, YunetFaceDetector


@pytest.fixture(scope='module')
def detector():
    cv2.setNumThreads(1)
    return YunetFaceDetector()


def test_the_shipped_file_is_opencv_zoos_and_an_altered_or_missing_one_is_refused(tmp_path):
    import hashlib
    path = default_model_dir() / MODEL_FILE
    assert path.stat().st_size == 232_589
    assert hashlib.sha256(path.read_bytes()).hexdigest() == MODEL_SHA256
    with pytest.raises(ValueError, match='not found'):
        YunetFaceDetector(str(tmp_path))
    bad = bytearray(path.read_bytes())
    bad[-1] ^= 1
    (tmp_path / MODEL_FILE).write_bytes(bytes(bad))
    with pytest.raises(ValueError, match='not the official one'):
        YunetFaceDetector(str(tmp_path))
    with pytest.raises(ValueError, match='min_face_size'):
        YunetFaceDetector(min_face_size=4)
    with pytest.raises(ValueError, match='score_threshold'):
        YunetFaceDetector(score_threshold=0.0)
    shutil.copy(path, tmp_path / MODEL_FILE)         # the right bytes anywhere: accepted
    assert YunetFaceDetector(str(tmp_path)).detect(moving_face_frames(1)[0])


def test_finds_the_astronaut_where_mtcnn_does_with_landmarks_in_mtcnns_order(detector):
    from skimage import data
    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)       # 512x512: not a x32 frame
    (d,) = detector.detect(photo)
    (m,) = MtcnnFaceDetector().detect(photo)
    assert iou(d.box, m.box) > 0.6 and 0.9 <= d.confidence <= 1.0
    side = m.w
    for (x, y), (mx, my) in zip(d.landmarks, m.landmarks):      # same points, same order
        assert abs(x - mx) < 0.1 * side and abs(y - my) < 0.1 * side
    (le, re, nose, lm, rm) = d.landmarks
    assert le[0] < nose[0] < re[0] and lm[0] < rm[0]
    assert max(le[1], re[1]) < nose[1] < min(lm[1], rm[1])
    assert detector.detect(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)) == []
    assert detector.detect(np.zeros((0, 0, 3), np.uint8)) == []
    assert len(detector.detect(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))) == 1


@pytest.mark.parametrize('size', [160, 240, 420])
def test_small_and_large_faces_are_found_in_the_whole_frame(detector, size):
    frame = np.full((FRAME_H, FRAME_W, 3), 110, np.uint8)
    frame[40:40 + size, 100:100 + size] = astronaut_face_patch(size)
    found = detector.detect(frame)
    assert found, f'no face of a {size}-px patch'
    # the patch's face is about 0.45 of the patch (astronaut_face_patch)
    assert 0.3 * size <= found[0].w <= 0.7 * size


def test_pipeline_with_yunet_follows_the_moving_face_and_takes_its_threshold_live():
    from emotion_perception.node_params import FACE_PARAMS
    p = {s.name: s.default for s in FACE_PARAMS}
    # upright only: YuNet finds few faces in a frame turned by 30 deg (README, "YuNet")
    pipe = build_face_pipeline(dict(p, face_detector='yunet', background_scan=False,
                                    turned_search_deg=0.0))
    assert isinstance(pipe.detector, YunetFaceDetector)
    tracks = [pipe.process(f, i / 30.0).tracks for i, f in enumerate(moving_face_frames(40))]
    assert sum(map(len, tracks)) >= 39                  # all but the first (min_hits 2)
    assert {t.id for ts in tracks for t in ts} == {'f1'}
    assert pipe.set_detector_setting('score_threshold', 0.999)
    assert pipe.detector.score_threshold == 0.999
    assert pipe.detector.detect(moving_face_frames(1)[0]) == []
    turned = build_face_pipeline(dict(p, face_detector='yunet'))
    assert isinstance(turned.detector.base, YunetFaceDetector)   # inside the turned search
    det = build_detector(dict(p, face_detector='yunet', turned_search_deg=0.0,
                              yunet_score_threshold=0.8))
    assert isinstance(det, YunetFaceDetector) and det.score_threshold == 0.8
    clone = det.clone()
    assert clone._session is det._session and clone.score_threshold == 0.8


def test_decoding_agrees_with_opencvs_own_facedetectoryn(tmp_path):
    """The same file through OpenCV's FaceDetectorYN (its own padding, decoding and NMS) gives
    the same face, score and landmarks as this module at full resolution."""
    if not hasattr(cv2, 'FaceDetectorYN'):
        pytest.skip('this OpenCV has no FaceDetectorYN')
    from skimage import data
    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    frame = np.full((FRAME_H, FRAME_W, 3), 90, np.uint8)
    frame[:, 64:576] = cv2.resize(photo, (512, 480))
    try:
        ref = cv2.FaceDetectorYN.create(str(default_model_dir() / MODEL_FILE), '',
                                        (FRAME_W, FRAME_H), 0.7, 0.3, 5000)
        _, rows = ref.detect(frame)
    except cv2.error as exc:                     # an OpenCV older than the 2023mar graph
        pytest.skip(f'OpenCV cannot run the file: {exc}')
    assert rows is not None and len(rows) == 1
    r = rows[0]
    mine = YunetFaceDetector(score_threshold=0.7, square=False, whole_frame_side=10_000,
                             mtcnn_landmarks=False)                  # the net's own points
    (d,) = mine.detect(frame)
    assert d.confidence == pytest.approx(float(r[14]), abs=0.01)
    assert iou(d.box, tuple(float(v) for v in r[:4])) > 0.95
    for k, (x, y) in enumerate(d.landmarks):
        assert abs(x - r[4 + 2 * k]) < 2.0 and abs(y - r[5 + 2 * k]) < 2.0


def test_a_window_around_a_small_face_is_searched_enlarged_and_finds_it(monkeypatch):
    """A window's smallest face is searched at >= WINDOW_MIN_FACE px (its largest at <=
    WINDOW_MAX_FACE px), so YuNet sees a small tracked face at a size it finds well."""
    from emotion_perception import yunet_detection
    from emotion_perception.scan_schedule import ScanSchedule
    det = YunetFaceDetector(min_face_size=16)
    frame = np.full((FRAME_H, FRAME_W, 3), 110, np.uint8)
    frame[100:170, 200:270] = astronaut_face_patch(70)             # a face of about 30 px
    (m,) = MtcnnFaceDetector(min_face_size=16).detect(frame)
    regions = ScanSchedule(5, 1.0).windows(FRAME_W, FRAME_H, [m.box])
    scales = []
    search = det._search
    monkeypatch.setattr(det, '_search', lambda bgr, rect, scale, lo, hi:
                        scales.append((scale, lo, hi)) or search(bgr, rect, scale, lo, hi))
    (d,) = det.detect(frame, regions)
    assert iou(d.box, m.box) > 0.5
    ((scale, lo, hi),) = scales
    assert scale > 1.0 and lo * scale == pytest.approx(yunet_detection.WINDOW_MIN_FACE)
    assert hi * scale <= yunet_detection.WINDOW_MAX_FACE
    scales.clear()
    big = ScanSchedule(5, 1.0).windows(FRAME_W, FRAME_H, [(100.0, 60.0, 300.0, 300.0)])
    det.detect(frame, big)                                           # a 300-px face: reduced
    assert scales[0][0] == pytest.approx(yunet_detection.WINDOW_MAX_FACE / scales[0][2])


def test_mtcnn_yunet_scans_whole_frames_with_mtcnn_and_windows_with_yunet(monkeypatch):
    from emotion_perception.face_detection import SplitDetector
    from emotion_perception.node_params import FACE_PARAMS
    from emotion_perception.turned_search import TurnedSearch
    p = {s.name: s.default for s in FACE_PARAMS}
    pipe = build_face_pipeline(dict(p, face_detector='mtcnn_yunet', background_scan=False))
    assert isinstance(pipe.detector, TurnedSearch)
    split = pipe.detector.base
    assert isinstance(split, SplitDetector)
    assert isinstance(split.whole, MtcnnFaceDetector)
    assert isinstance(split.windows, YunetFaceDetector)
    calls = []
    for name, part in (('mtcnn', split.whole), ('yunet', split.windows)):
        real = part.detect
        monkeypatch.setattr(part, 'detect', lambda image, regions=None, n=name, f=real:
                            calls.append((n, regions is None)) or f(image, regions))
    tracks = [pipe.process(f, i / 30.0).tracks for i, f in enumerate(moving_face_frames(40))]
    assert sum(map(len, tracks)) >= 39 and {t.id for ts in tracks for t in ts} == {'f1'}
    assert all(whole for n, whole in calls if n == 'mtcnn')        # MTCNN: whole frames only
    assert all(not whole for n, whole in calls if n == 'yunet')    # YuNet: windows only
    assert sum(n == 'yunet' for n, _ in calls) >= 25               # most frames: windows
    assert sum(n == 'mtcnn' for n, _ in calls) >= 8                # every 5th: whole frame
    # live settings reach the part that has them; clones are two detectors again
    assert pipe.set_detector_setting('score_threshold', 0.95)
    assert pipe.set_detector_setting('min_confidence', 0.95)
    assert split.windows.score_threshold == 0.95 and split.whole.min_confidence == 0.95
    assert pipe.set_detector_setting('min_face_size', 40)
    assert split.whole.min_face_size == split.windows.min_face_size == 40
    assert not pipe.set_detector_setting('min_neighbors', 3)          # Haar only
    clone = split.clone()
    assert clone.whole is not split.whole and clone.windows._session is split.windows._session
    assert clone.windows.score_threshold == 0.95
    assert split.model_dir == split.whole.model_dir and split.brightened == split.whole.brightened
    assert split.min_confidence == 0.95 and split.score_threshold == 0.95     # read through


def test_yunets_landmarks_are_moved_to_mtcnns_places_on_any_face_pose():
    """A face whose YuNet points are exactly YuNet's template (turned, scaled, shifted) gets
    exactly MTCNN's template under the same pose, so aligned crops have the encoder's geometry;
    a face's own deviation from the template is kept."""
    from emotion_perception.face_alignment import FER_TEMPLATE
    from emotion_perception.yunet_detection import YUNET_TEMPLATE, to_mtcnn_landmarks
    for angle, side, shift in ((0.0, 100.0, (50.0, 80.0)), (25.0, 240.0, (300.0, 10.0)),
                               (-40.0, 37.0, (0.0, 0.0))):
        t = np.deg2rad(angle)
        rot = side * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        move = np.array(shift)

        def pose(pts, rot=rot, move=move):
            return pts @ rot.T + move
        assert np.allclose(to_mtcnn_landmarks(pose(YUNET_TEMPLATE)), pose(FER_TEMPLATE),
                           atol=1e-6)
        smile = YUNET_TEMPLATE + np.array([[0, 0], [0, 0], [0, 0], [-0.02, 0.01], [0.02, 0.01]])
        moved = to_mtcnn_landmarks(pose(smile))
        assert np.allclose(moved - pose(smile), pose(FER_TEMPLATE) - pose(YUNET_TEMPLATE),
                           atol=0.01 * side)
    # the shipped detector reports the moved points; mtcnn_landmarks=False the net's own
    frame = moving_face_frames(1)[0]
    (moved,) = YunetFaceDetector().detect(frame)
    (raw,) = YunetFaceDetector(mtcnn_landmarks=False).detect(frame)
    assert moved.box == raw.box
    assert np.allclose(moved.landmarks, to_mtcnn_landmarks(np.array(raw.landmarks)))
    assert not np.allclose(moved.landmarks, raw.landmarks, atol=1.0)
