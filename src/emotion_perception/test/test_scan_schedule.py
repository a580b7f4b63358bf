"""Windowed face detection between whole-frame scans (scan_schedule + the detector's regions)."""
import cv2
import numpy as np
import pytest
from perception_media import FRAME_H, FRAME_W, astronaut_face_patch, moving_face_frames

from emotion_perception.face_detection import Detection, HaarFaceDetector, iou
from emotion_perception.face_tracking import FaceTracker
from emotion_perception.scan_schedule import ScanRegion, ScanSchedule
from emotion_perception.vision_pipeline import FacePipeline, build_face_pipeline

FACE = (100.0, 120.0, 80.0, 80.0)


@pytest.fixture(scope='module')
def detector():
    cv2.setNumThreads(1)
    return HaarFaceDetector()


def test_whole_frame_first_then_every_n_frames():
    s = ScanSchedule(full_scan_every=3)
    plans = [s.plan(FRAME_W, FRAME_H, [FACE]) for _ in range(7)]
    assert [p is None for p in plans] == [True, False, False, True, False, False, True]
    assert s.full_scans == 3 and s.frames == 7
    assert s.full_scan_fraction == pytest.approx(3 / 7)


def test_no_known_face_means_whole_frame_and_every_1_means_always():
    s = ScanSchedule(full_scan_every=5)
    assert s.plan(FRAME_W, FRAME_H, [FACE]) is None
    assert s.plan(FRAME_W, FRAME_H, []) is None            # nothing to look around
    always = ScanSchedule(full_scan_every=1)
    assert all(always.plan(FRAME_W, FRAME_H, [FACE]) is None for _ in range(4))


def test_region_around_a_face_is_clipped_and_limits_sizes():
    s = ScanSchedule(full_scan_every=5, search_margin=0.5, size_range=1.5)
    s.plan(FRAME_W, FRAME_H, [FACE])
    (r,) = s.plan(FRAME_W, FRAME_H, [FACE])
    assert (r.x0, r.y0, r.x1, r.y1) == (60, 80, 220, 240)
    assert r.min_size == pytest.approx(80 / 1.5) and r.max_size == pytest.approx(120)
    (edge,) = s.plan(FRAME_W, FRAME_H, [(600.0, 440.0, 60.0, 60.0)])
    assert (edge.x1, edge.y1) == (FRAME_W, FRAME_H) and edge.x0 == 570


def test_a_window_that_loses_its_face_asks_for_a_whole_scan_of_the_same_frame():
    s = ScanSchedule(full_scan_every=10)
    assert not s.needs_whole_scan(s.plan(FRAME_W, FRAME_H, [FACE]), [])   # was whole already
    regions = s.plan(FRAME_W, FRAME_H, [FACE])
    assert not s.needs_whole_scan(regions, [Detection(*FACE, 0.9)])      # found: keep windowing
    regions = s.plan(FRAME_W, FRAME_H, [FACE])
    assert regions is not None
    assert s.needs_whole_scan(regions, [Detection(400, 300, 80, 80, 0.9)])  # not in the window
    assert s.misses == 1 and s.full_scans == 2
    # the rescan restarts the count: the next whole-frame scan is 10 frames later
    assert [s.plan(FRAME_W, FRAME_H, [FACE]) is None for _ in range(10)] == [False] * 9 + [True]


def test_pipeline_rescans_the_whole_frame_when_the_window_misses(detector):
    frames = moving_face_frames(3)

    class Jumpy(FaceTracker):          # reports the face far from where it is
        def last_frame_boxes(self):
            return [(FRAME_W - 100.0, FRAME_H - 100.0, 80.0, 80.0)] if self.tracks else []

    pipe = FacePipeline(detector, Jumpy(min_hits=1), None, schedule=ScanSchedule(5))
    assert pipe.process(frames[0], 0.0).full_scan
    r = pipe.process(frames[1], 0.033)
    assert r.full_scan and len(r.tracks) == 1 and pipe.schedule.misses == 1


@pytest.mark.parametrize('kw', [{'full_scan_every': 0}, {'search_margin': 0.0},
                                {'size_range': 1.0}])
def test_bad_settings_are_refused_by_name(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        ScanSchedule(**kw)


@pytest.mark.parametrize('kind', ['haar', 'mtcnn', 'yunet'])
def test_detector_finds_the_face_in_its_window_only(kind):
    """Every detector behind the interface: a window finds the face the whole frame finds, and
    nothing outside it or outside its face sizes."""
    from emotion_perception.mtcnn_detection import MtcnnFaceDetector
    from emotion_perception.yunet_detection import YunetFaceDetector
    cv2.setNumThreads(1)
    detector = {'haar': HaarFaceDetector, 'mtcnn': MtcnnFaceDetector,
                'yunet': YunetFaceDetector}[kind]()
    frame = moving_face_frames(3)[1]
    (whole,) = detector.detect(frame)
    x, y, w, h = whole.box
    around = ScanRegion(int(x - w / 2), int(y - h / 2), int(x + 1.5 * w), int(y + 1.5 * h),
                        w / 1.5, w * 1.5)
    (found,) = detector.detect(frame, [around])
    assert iou(found.box, whole.box) > 0.7
    assert found.confidence == pytest.approx(whole.confidence, abs=0.2)
    elsewhere = ScanRegion(0, 0, 200, 200, 40, 300) if x > 250 else \
        ScanRegion(FRAME_W - 200, FRAME_H - 200, FRAME_W, FRAME_H, 40, 300)
    assert detector.detect(frame, [elsewhere]) == []
    too_small = ScanRegion(around.x0, around.y0, around.x1, around.y1, 40, w / 2)
    assert detector.detect(frame, [too_small]) == []
    # two overlapping windows on the same face report it once
    assert len(detector.detect(frame, [around, around])) == 1


def test_windowed_pipeline_follows_the_moving_face_with_a_fraction_of_the_scans(detector):
    frames = moving_face_frames(60)
    results = {}
    for every in (1, 5):
        pipe = FacePipeline(detector, FaceTracker(), None, schedule=ScanSchedule(every))
        tracks = [pipe.process(f, i / 30.0).tracks for i, f in enumerate(frames)]
        results[every] = (tracks, pipe.schedule)
    (full, _), (windowed, sched) = results[1], results[5]
    assert sum(map(len, windowed)) >= sum(map(len, full)) - 2
    assert {t.id for ts in windowed for t in ts} == {'f1'}
    assert sched.full_scan_fraction < 0.4
    both = [(a[0], b[0]) for a, b in zip(full, windowed) if a and b]
    assert len(both) >= 50 and np.median([iou(a.box, b.box) for a, b in both]) > 0.8


def test_a_second_face_entering_is_found_by_the_next_whole_scan(detector):
    patch = astronaut_face_patch(200)
    pipe = FacePipeline(detector, FaceTracker(min_hits=2), None, schedule=ScanSchedule(5))
    first_seen = {}
    for i in range(20):
        frame = np.full((FRAME_H, FRAME_W, 3), 100, np.uint8)
        frame[20:220, 20:220] = patch
        if i >= 7:                                    # enters while the first is windowed
            frame[260:460, 420:620] = cv2.flip(patch, 1)
        for t in pipe.process(frame, i / 30.0).tracks:
            first_seen.setdefault(t.id, i)
    assert set(first_seen) == {'f1', 'f2'}
    # frame 10 is the next whole-frame scan after frame 7; min_hits=2 adds one frame
    assert first_seen['f2'] <= 7 + 5 + 1


def test_node_parameters_build_the_windowed_pipeline():
    from emotion_perception.node_params import FACE_PARAMS as PARAMS
    p = {s.name: s.default for s in PARAMS}
    pipe = build_face_pipeline(p)
    assert pipe.schedule.full_scan_every == p['full_scan_every'] == 5
    assert pipe.tracker.min_hits == p['min_hits']
    assert pipe.background is not None and p['background_scan'] is True
    pipe.close()
    assert build_face_pipeline(dict(p, background_scan=False)).background is None
    with pytest.raises(ValueError, match='full_scan_every'):
        build_face_pipeline(dict(p, full_scan_every=0))


def test_background_scan_finds_an_entering_face_with_no_whole_scan_in_line(detector):
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
            pipe.background.wait(10.0)     # deterministic: the scan ends before the next frame
            for t in r.tracks:
                first_seen.setdefault(t.id, i)
        assert set(first_seen) == {'f1', 'f2'}
        # scan started on frame 10, its face searched for in frame 11, confirmed in frame 12
        assert first_seen['f2'] <= 7 + 5 + 2
        # only the first frame (no face known yet) waited for a whole-frame scan
        assert in_line[0] and not any(in_line[1:])
        assert pipe.background.scans >= 3 and pipe.background.failures == 0
    finally:
        pipe.close()


def test_background_scan_counts_failures_and_skips_while_busy(detector):
    from emotion_perception.background_scan import BackgroundScan
    bg = BackgroundScan(detector)
    try:
        assert bg.take() == []                                   # nothing started
        assert bg.submit(np.zeros((4, 4, 5), np.uint8))          # 5 channels: OpenCV refuses
        bg.wait(10.0)
        assert bg.take() == [] and bg.failures == 1 and 'error' in bg.error
        big = cv2.resize(moving_face_frames(3)[1], (1920, 1440))
        assert bg.submit(big) and not bg.submit(big)             # one scan at a time
        assert bg.skipped == 1
        bg.wait(10.0)
        assert len(bg.take()) == 1 and bg.take() == []          # results are taken once
    finally:
        bg.close()
