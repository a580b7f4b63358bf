"""Tracking: another person standing where the tracked one stood gets a new id
(``identity_threshold``), the same face moving or changing a little keeps its id."""
import cv2
import numpy as np
import pytest
from skimage import data

from emotion_perception.face_detection import Detection
from emotion_perception.face_tracking import FaceTracker
from emotion_perception.node_params import FACE_PARAMS
from emotion_perception.vision_pipeline import FacePipeline, build_face_pipeline, thumbnail

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
    params['identity_threshold'] = 0.5
    assert build_face_pipeline(params).identity_threshold == 0.5
