"""Face detection on turned copies of the frame (``turned_search``): a strongly tilted face that
the upright detector misses is found within one angle cycle, with landmarks that carry its tilt,
and then followed by the windowed search; upright faces cost no extra pass."""
import math

import cv2
import numpy as np
import pytest
from perception_media import FRAME_H, FRAME_W, astronaut_face_patch

from emotion_perception.face_detection import Detection, HaarFaceDetector
from emotion_perception.face_tracking import FaceTracker
from emotion_perception.mtcnn_detection import MtcnnFaceDetector
from emotion_perception.node_params import FACE_PARAMS
from emotion_perception.scan_schedule import ScanRegion, ScanSchedule
from emotion_perception.turned_search import TurnedSearch, with_turned_search
from emotion_perception.vision_pipeline import FacePipeline, build_detector

TILT = 70.0     # the astronaut turned this far: MTCNN misses it upright, finds it turned by -30


@pytest.fixture(scope='module')
def mtcnn():
    cv2.setNumThreads(1)
    return MtcnnFaceDetector()


def tilted_frame(tilt: float = TILT) -> np.ndarray:
    frame = np.full((FRAME_H, FRAME_W, 3), 90, np.uint8)
    frame[130:350, 210:430] = astronaut_face_patch(220)
    m = cv2.getRotationMatrix2D((FRAME_W / 2, FRAME_H / 2), tilt, 1.0)
    return cv2.warpAffine(frame, m, (FRAME_W, FRAME_H), borderValue=(90, 90, 90))


def eye_line_deg(d: Detection) -> float:
    (lx, ly), (rx, ry) = d.landmarks[:2]
    return math.degrees(math.atan2(ry - ly, rx - lx))


def test_a_tilted_face_missed_upright_is_found_turned_with_its_tilt_in_the_landmarks(mtcnn):
    frame = tilted_frame()
    assert mtcnn.detect(frame) == []                       # the upright detector misses it
    search = TurnedSearch(mtcnn, 30.0)
    calls = [search.detect(frame) for _ in range(4)]        # upright, +30, upright, -30
    assert [len(c) for c in calls] == [0, 0, 0, 1]
    (d,) = calls[3]
    assert search.turned_found == 1
    # the face sits about the frame's centre (it was turned about it), its box is face-sized
    assert abs(d.x + d.w / 2 - FRAME_W / 2) < 40 and abs(d.y + d.h / 2 - FRAME_H / 2) < 40
    assert 60 < d.w < 130
    # landmarks are in frame coordinates and lean as the face does (image y runs down)
    assert eye_line_deg(d) == pytest.approx(-TILT, abs=15)
    assert all(abs(x - FRAME_W / 2) < 80 and abs(y - FRAME_H / 2) < 80 for x, y in d.landmarks)


def test_the_windowed_search_follows_a_turned_face_and_the_pipeline_gives_it_an_id(mtcnn):
    frame = tilted_frame()
    search = TurnedSearch(mtcnn, 30.0)
    pipe = FacePipeline(search, FaceTracker(min_hits=2), None, schedule=ScanSchedule(5),
                        background=False, align_faces=True)
    ids = [[t.id for t in pipe.process(frame, i / 30.0).tracks] for i in range(8)]
    # found by the 4th whole scan (-30), then by the -30 pass of its window: an id 1 frame later
    assert ids[:3] == [[], [], []] and ids[4:] == [['f1']] * 4
    assert pipe.schedule.full_scan_fraction < 0.7             # windows, not whole scans, after
    (track,) = pipe.tracker.confirmed()
    region = ScanSchedule(5).windows(FRAME_W, FRAME_H, [track.box])
    assert mtcnn.detect(frame, region) == []                  # upright window: nothing
    (d,) = search.detect(frame, region)
    assert eye_line_deg(d) == pytest.approx(-TILT, abs=15)


class Recorder:
    """A stand-in detector: records each image it is given and returns ``found`` for the
    whole frame and for windows."""

    def __init__(self, found=()) -> None:
        self.images, self.regions, self.found = [], [], list(found)
        self.min_confidence = 0.9

    def detect(self, image, regions=None):
        self.images.append(image)
        self.regions.append(regions)
        return list(self.found)

    def clone(self):
        return Recorder(self.found)


def test_whole_scans_cycle_upright_plus_upright_minus_and_upright_windows_cost_one_pass():
    frame = np.random.default_rng(0).integers(0, 255, (FRAME_H, FRAME_W, 3), np.uint8)
    base = Recorder()
    search = TurnedSearch(base, 25.0)
    for _ in range(8):
        search.detect(frame)
    upright = [img is frame for img in base.images]
    assert upright == [True, False, True, False] * 2
    # the turned copies are the frame turned by +25 and -25 deg about its centre
    for img, turn in ((base.images[1], 25.0), (base.images[3], -25.0)):
        m = cv2.getRotationMatrix2D((FRAME_W / 2, FRAME_H / 2), turn, 1.0)
        expect = cv2.warpAffine(frame, m, (FRAME_W, FRAME_H), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        assert np.array_equal(img, expect)
    # a window whose face is found upright gets no turned pass
    face = Detection(300.0, 200.0, 80.0, 80.0, 0.99)
    base = Recorder([face])
    search = TurnedSearch(base, 30.0)
    region = ScanRegion(220, 120, 460, 360, 50, 120)
    assert search.detect(frame, [region]) == [face]
    assert len(base.images) == 1 and search.turned_found == 0
    # a window that finds nothing is searched turned by +30 then -30, each as its own crop
    base = Recorder()
    search = TurnedSearch(base, 30.0)
    assert search.detect(frame, [region]) == []
    assert len(base.images) == 3
    assert [img.shape[:2] for img in base.images[1:]] == [(240, 240)] * 2
    assert [r[0].min_size for r in base.regions[1:]] == [50, 50]


class TurnedOnly(Recorder):
    """Finds nothing upright (its first call) and one face in every turned crop after."""

    def detect(self, image, regions=None):
        super().detect(image, regions)
        return [] if len(self.images) == 1 else list(self.found)


def test_a_detection_in_a_turned_window_is_mapped_back_to_the_frame():
    region = ScanRegion(200, 100, 400, 300, 40, 160)        # centre (300, 200), 200 px square
    # in the turned crop: a face 40 px right of the crop's centre (100, 100), eyes level
    marks = ((130.0, 90.0), (150.0, 90.0), (140.0, 100.0), (132.0, 110.0), (148.0, 110.0))
    search = TurnedSearch(TurnedOnly([Detection(110.0, 70.0, 60.0, 60.0, 0.95, marks)]), 30.0)
    (d,) = search.detect(np.zeros((FRAME_H, FRAME_W, 3), np.uint8), [region])
    # the crop was turned by +30 deg (counter-clockwise on screen) about the window's centre, so
    # a point 40 px to the right of the crop's centre lies 40 px along -30 deg in the frame
    a = math.radians(30.0)
    assert d.x + d.w / 2 == pytest.approx(300 + 40 * math.cos(a), abs=1e-6)
    assert d.y + d.h / 2 == pytest.approx(200 + 40 * math.sin(a), abs=1e-6)
    assert (d.w, d.h, d.confidence) == (60.0, 60.0, 0.95)
    assert eye_line_deg(d) == pytest.approx(30.0, abs=1e-6)   # level in the crop: leaning here


def test_parameter_builds_the_search_and_reads_settings_through():
    p = dict({s.name: s.default for s in FACE_PARAMS}, face_detector='mtcnn')
    assert p['turned_search_deg'] == 30.0
    det = build_detector(p)
    assert isinstance(det, TurnedSearch) and isinstance(det.base, MtcnnFaceDetector)
    assert det.min_confidence == 0.9 and det.model_dir == det.base.model_dir
    clone = det.clone()
    assert isinstance(clone, TurnedSearch) and clone.base is not det.base
    assert isinstance(build_detector(dict(p, turned_search_deg=0.0)), MtcnnFaceDetector)
    haar = build_detector(dict(p, face_detector='haar'))
    assert isinstance(haar.base, HaarFaceDetector)
    assert with_turned_search(haar.base, 0.0) is haar.base
    with pytest.raises(ValueError, match='angle'):
        TurnedSearch(haar.base, 90.0)
    with pytest.raises(AttributeError):
        _ = det.no_such_setting


def test_live_detector_settings_reach_the_detector_inside_the_search_and_its_worker_copy():
    from emotion_perception.vision_pipeline import build_face_pipeline
    p = dict({s.name: s.default for s in FACE_PARAMS}, face_detector='mtcnn')
    pipe = build_face_pipeline(p)                 # background scan on a worker thread
    try:
        worker = pipe.background._detector
        assert isinstance(worker, TurnedSearch) and worker.base is not pipe.detector.base
        assert pipe.set_detector_setting('min_confidence', 0.95)
        assert pipe.detector.base.min_confidence == worker.base.min_confidence == 0.95
        assert pipe.detector.min_confidence == 0.95          # read through the search
        assert pipe.detector.base.low_light_gain == worker.base.low_light_gain == 4.0
        assert pipe.set_detector_setting('low_light_gain', 1.0)
        assert pipe.detector.base.low_light_gain == worker.base.low_light_gain == 1.0
        assert not pipe.set_detector_setting('min_neighbors', 5)   # a Haar setting on MTCNN
        assert not hasattr(pipe.detector.base, 'min_neighbors')
    finally:
        pipe.close()
