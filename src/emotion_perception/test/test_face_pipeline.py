"""Face detection, tracking and encoding on real photos (skimage's astronaut)."""
import cv2
import numpy as np
import pytest
from perception_media import FRAME_H, FRAME_W, astronaut_face_patch, moving_face_frames

from emotion_perception.face_detection import Detection, HaarFaceDetector
from emotion_perception.face_tracking import FaceTracker, iou
from emotion_perception.vision_pipeline import EncodeGate, FacePipeline, crop_face, draw_debug


@pytest.fixture(scope='module')
def detector():
    cv2.setNumThreads(1)
    return HaarFaceDetector()


def test_detects_the_astronaut_and_nothing_in_a_face_free_photo(detector):
    from skimage import data
    dets = detector.detect(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    assert len(dets) == 1
    d = dets[0]
    assert iou(d.box, (177, 66, 97, 97)) > 0.5 and 0.5 <= d.confidence <= 1.0
    assert detector.detect(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)) == []
    assert detector.detect(np.zeros((0, 0, 3), np.uint8)) == []


def test_moving_photo_keeps_one_id(detector):
    tracker = FaceTracker()
    ids, hits = set(), 0
    for i, frame in enumerate(moving_face_frames(30)):
        tracks = tracker.update(detector.detect(frame), stamp=i / 30.0)
        assert len(tracks) <= 1
        hits += len(tracks)
        ids.update(t.id for t in tracks)
    assert hits >= 27, f'face reported in only {hits}/30 frames'
    assert ids == {'f1'}
    # the first sighting is tentative (min_hits=2): reported from the second frame on
    assert tracker.confirmed()[0].age == hits + 1


def test_two_faces_get_two_stable_ids(detector):
    patch = astronaut_face_patch(220)
    tracker = FaceTracker()
    seen = []
    for i in range(10):
        frame = np.full((FRAME_H, FRAME_W, 3), 100, np.uint8)
        frame[20 + i * 3:240 + i * 3, 20 + i * 8:240 + i * 8] = patch
        frame[250:470, 400 - i * 8:620 - i * 8] = cv2.flip(patch, 1)
        tracks = tracker.update(detector.detect(frame), stamp=i * 0.033)
        seen.append({t.id: t.x for t in tracks})
    full = [s for s in seen if len(s) == 2]
    assert len(full) >= 8
    for s in full:            # the left face keeps the id it started with
        left = min(s, key=s.get)
        assert left == min(full[0], key=full[0].get)


def test_lost_track_timeout():
    t = FaceTracker(lost_timeout=1.0, min_hits=1)
    d = Detection(100, 100, 80, 80, 0.9)
    assert t.update([d], 0.0)[0].id == 'f1'
    assert t.update([], 0.5) == []
    assert t.update([d], 0.9)[0].id == 'f1'          # back within the timeout
    t.update([], 1.0)
    assert t.update([d], 2.5)[0].id == 'f2'          # unseen 1.6 s: a new person
    assert t.expired == 1


def test_fast_motion_uses_centroid_fallback_and_far_jump_is_new():
    t = FaceTracker(iou_threshold=0.3, max_center_shift=0.75, min_hits=1)
    t.update([Detection(100, 100, 80, 80, 0.9)], 0.0)
    assert t.update([Detection(150, 100, 80, 80, 0.9)], 0.03)[0].id == 'f1'   # IoU 0.23
    assert t.update([Detection(500, 300, 80, 80, 0.9)], 0.06)[0].id == 'f2'


def test_one_frame_false_positive_gets_no_id():
    t = FaceTracker(min_hits=2)
    face, ghost = Detection(100, 100, 80, 80, 0.9), Detection(400, 300, 90, 90, 0.6)
    assert t.update([face], 0.0) == []                     # tentative
    assert [x.id for x in t.update([face, ghost], 0.033)] == ['f1']
    assert [x.id for x in t.update([face], 0.066)] == ['f1']   # the ghost vanished: no id used
    assert [x.id for x in t.update([face, Detection(300, 50, 80, 80, 0.7)], 0.1)] == ['f1']
    assert sorted(x.id for x in t.update([face, Detection(302, 52, 80, 80, 0.7)], 0.133)) == \
        ['f1', 'f2']
    assert t.created == 2


def test_crop_is_clipped_to_the_image():
    img = np.zeros((100, 100, 3), np.uint8)
    assert crop_face(img, (90, 90, 30, 30), 0.1).shape == (13, 13, 3)
    assert crop_face(img, (10, 10, 50, 50), 0.1).shape == (60, 60, 3)


def test_pipeline_encodes_each_face(detector, test_bundle):
    from emotion_runtime.model_bundle import ModelBundle
    bundle = ModelBundle.load(test_bundle)
    pipe = FacePipeline(detector, FaceTracker(min_hits=1), bundle)
    res = pipe.process(moving_face_frames(3)[1], 0.0)
    assert len(res.tracks) == 1 and not res.model_error
    assert res.embeddings.shape == (1, bundle.vision_embedding_size)
    assert res.logits.shape == (1, len(bundle.labels))
    assert np.isfinite(res.embeddings).all()
    dbg = draw_debug(moving_face_frames(3)[1], res.tracks, bundle.labels, res.logits)
    assert dbg.shape == (FRAME_H, FRAME_W, 3)


def test_pipeline_keeps_tracking_when_the_model_fails(detector):
    class Broken:
        labels = ['a']

        def encode_faces(self, crops):
            raise RuntimeError('onnx exploded')

    pipe = FacePipeline(detector, FaceTracker(min_hits=1), Broken())
    res = pipe.process(moving_face_frames(3)[1], 0.0)
    assert len(res.tracks) == 1 and res.embeddings is None
    assert 'onnx exploded' in res.model_error and pipe.model_failures == 1
    assert res.encoded == []


def test_encode_gate_paces_each_track_and_lets_new_ids_through():
    gate = EncodeGate(15.0)
    stamps = [k / 30.0 + (0.004 if k % 3 == 1 else 0.0) for k in range(12)]   # 30 fps, jitter
    passed = []
    for t in stamps:
        if gate.due('f1', t):
            gate.encoded('f1', t)
            passed.append(t)
    assert len(passed) == 6 and passed[0] == 0.0              # every second frame
    assert gate.held_back == 6
    assert gate.due('f2', stamps[-1])                         # a new id: at once
    gate.keep({'f2'})
    assert gate.due('f1', stamps[-1])                         # forgotten once out of view
    gate.encoded('f1', 5.0)
    assert gate.due('f1', 4.0)                                # stamps went backwards
    every = EncodeGate(0.0)
    assert all(every.due('f1', t) for t in (0.0, 0.0, 0.001)) and every.held_back == 0
    fifteen_fps = EncodeGate(15.0)
    for k in range(5):
        assert fifteen_fps.due('f1', k / 15.0)
        fifteen_fps.encoded('f1', k / 15.0)


def test_pipeline_with_max_encode_rate_encodes_every_second_frame_at_30fps(detector,
                                                                          test_bundle):
    from emotion_runtime.model_bundle import ModelBundle
    bundle = ModelBundle.load(test_bundle)
    pipe = FacePipeline(detector, FaceTracker(min_hits=1), bundle, max_encode_rate_hz=15.0)
    rows = []
    for k, frame in enumerate(moving_face_frames(30)[:6]):
        res = pipe.process(frame, k / 30.0)
        assert len(res.tracks) == 1 and not res.model_error    # tracked on every frame
        assert res.embeddings.shape[0] == res.logits.shape[0] == len(res.encoded)
        rows.append(len(res.encoded))
        assert set(pipe.last_logits) == {res.tracks[0].id}
    assert rows == [1, 0, 1, 0, 1, 0]
    assert pipe.gate.held_back == 3
    dbg = draw_debug(frame, res.tracks, bundle.labels, [pipe.last_logits.get(res.tracks[0].id)])
    assert dbg.shape == (FRAME_H, FRAME_W, 3)
