"""Tracking: another person standing where the tracked one stood gets a new id
(``identity_threshold``), the same face moving or changing a little keeps its id."""
import cv2
import numpy as np
import pytest
from skimage import data

from emotion_perception.face_detection import Detection
from emotion_perception.face_tracking import FaceTracker
from emotion_perception.node_params import FACE_PARAMS
from emotion_perception.vision_pipeline import (
    FacePipeline,
    LookMemory,
    build_face_pipeline,
    thumbnail,
)

BOX = (200.0, 120.0, 160.0, 160.0)


class _Detector:
    def detect(self, image, regions=None):
        return [Detection(*BOX, 0.99, None)]


def _frame(face: np.ndarray, dx: int = 0) -> np.ndarray:
    frame = np.full((480, 640, 3), 110, np.uint8)
    x, y, w, h = (int(v) for v in BOX)
    frame[y:y + h, x + dx:x + dx + w] = cv2.resize(face, (w, h), interpolation=cv2.INTER_AREA)
    return frame


def _faces() -> tuple[np.ndarray, np.ndarray]:
    astro = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[30:200, 150:320]
    camera = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)[40:170, 200:330]
    return astro, camera


def test_thumbnail_is_a_unit_vector_and_correlates():
    astro, camera = _faces()
    a = thumbnail(astro)
    assert a.shape == (256,) and np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert float(a @ thumbnail(astro)) == pytest.approx(1.0, abs=1e-5)
    brighter = np.clip(astro.astype(np.int16) + 30, 0, 255).astype(np.uint8)
    assert float(a @ thumbnail(brighter)) > 0.95            # lighting offset: same look
    assert float(a @ thumbnail(camera)) < 0.6


@pytest.mark.parametrize('threshold,expect_new', [(0.0, False), (0.6, True)])
def test_another_face_in_the_same_place_gets_a_new_id(threshold, expect_new):
    astro, camera = _faces()
    pipe = FacePipeline(_Detector(), FaceTracker(min_hits=1), None,
                        identity_threshold=threshold)
    ids = []
    for face, dx in ((astro, 0), (astro, 2), (astro, 4), (camera, 4), (camera, 6)):
        ids.append([t.id for t in pipe.process(_frame(face, dx), len(ids) / 15).tracks])
    assert all(len(i) == 1 for i in ids)
    ids = [i[0] for i in ids]
    assert ids[0] == ids[1] == ids[2]                       # the same face moving keeps its id
    assert ids[3] == ids[4]                                 # the new face keeps its new id
    assert (ids[3] != ids[2]) is expect_new
    assert pipe.identity_changes == int(expect_new)
    assert pipe.tracker.created == 1 + int(expect_new)


def test_reidentify_gives_a_fresh_id_and_ignores_tentative_tracks():
    tracker = FaceTracker(min_hits=2)
    d = Detection(*BOX, 0.99, None)
    assert tracker.update([d], 0.0) == []                   # tentative: no id yet
    (t,) = tracker.update([d], 0.1)
    old = t.id
    assert tracker.reidentify(t) != old and t.id != old
    (t2,) = tracker.update([d], 0.2)
    assert t2 is t and t2.id == t.id                        # the new id continues
    assert tracker.reidentify(FaceTracker().tracks.get(0) or
                              type(t)('', 0, 0, 1, 1, 1.0, 1, 0.0, 0.0)) == ''


def test_identity_threshold_comes_from_the_parameters():
    params = {s.name: s.default for s in FACE_PARAMS}
    assert build_face_pipeline(params).identity_threshold == params['identity_threshold']
    assert build_face_pipeline(params).looks.confirm == params['identity_confirm'] == 2
    params['identity_threshold'] = 0.5
    assert build_face_pipeline(params).identity_threshold == 0.5
    with pytest.raises(ValueError, match='identity_confirm'):
        LookMemory(0.5, confirm=0)


def _zoomed(face: np.ndarray) -> np.ndarray:
    """The same face framed another way (as a detector alternating between two boxes)."""
    return cv2.resize(face[40:130, 40:130], face.shape[1::-1], interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize('confirm', [1, 2])
def test_a_face_framed_two_ways_keeps_its_id_and_another_face_still_gets_a_new_one(confirm):
    """identity_confirm 2: a face whose crops alternate between two framings keeps one id (1
    gave it a new id at each switch); another face in its place gets a new id at its second
    frame, and only one."""
    astro, camera = _faces()
    zoomed = _zoomed(astro)
    assert float(thumbnail(astro) @ thumbnail(zoomed)) < 0.5      # the framings look unlike
    pipe = FacePipeline(_Detector(), FaceTracker(min_hits=1), None, identity_threshold=0.5,
                        identity_confirm=confirm)
    shown = [astro, astro, zoomed, astro, zoomed, astro, astro, zoomed, zoomed, astro,
             camera, camera, camera, camera]
    ids = []
    for face in shown:
        (t,) = pipe.process(_frame(face), len(ids) / 15).tracks
        ids.append(t.id)
    first = ids[0]
    if confirm == 2:
        # the zoomed framing keeps the astronaut's id, even twice in a row once it was seen
        # between matching looks; the camera man gets his id at his second frame
        assert ids[:11] == [first] * 11
        assert ids[11] == ids[12] == ids[13] != first
        assert pipe.identity_changes == 1
    else:
        assert ids[2] != first and len(set(ids[:10])) > 3        # a new id at each switch
        assert ids[10] == ids[11] == ids[12] == ids[13] != ids[9]


def test_look_memory_forgets_ended_tracks_and_hands_looks_to_the_new_id():
    astro, camera = _faces()
    a, c = thumbnail(astro), thumbnail(camera)
    m = LookMemory(0.5, confirm=2, size=4)
    assert not m.changed('f1', a) and not m.changed('f1', a)
    assert not m.changed('f1', c)                   # one unlike look: waits
    assert m.changed('f1', c)                       # two in a row, alike: another face
    m.rename('f1', 'f2')
    assert not m.changed('f2', c) and m.changed('f2', a) is False
    for _ in range(6):
        m.changed('f2', c)
    assert len(m._looks['f2']) == 4                 # at most `size` looks per id
    m.keep({'f9'})
    assert m._looks == {} and m._waiting == {}
