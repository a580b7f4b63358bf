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
    mine = YunetFaceDetector(score_threshold=0.7, square=False, whole_frame_side=10_000)
    (d,) = mine.detect(frame)
    assert d.confidence == pytest.approx(float(r[14]), abs=0.01)
    assert iou(d.box, tuple(float(v) for v in r[:4])) > 0.95
    for k, (x, y) in enumerate(d.landmarks):
        assert abs(x - r[4 + 2 * k]) < 2.0 and abs(y - r[5 + 2 * k]) < 2.0
