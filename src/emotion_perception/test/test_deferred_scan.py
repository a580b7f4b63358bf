"""DeferredScan: the background scan's timing (faces in the next frame) without its thread."""
import numpy as np
from perception_media import astronaut_face_patch

from emotion_perception.background_scan import DeferredScan
from emotion_perception.face_detection import HaarFaceDetector
from emotion_perception.face_tracking import FaceTracker
from emotion_perception.node_params import FACE_PARAMS
from emotion_perception.scan_schedule import ScanSchedule
from emotion_perception.vision_pipeline import FacePipeline, build_face_pipeline


def test_deferred_scan_hands_its_faces_to_the_next_take_once():
    scan = DeferredScan(HaarFaceDetector())
    assert scan.take() == [] and not scan.busy
    frame = np.full((480, 640, 3), 100, np.uint8)
    frame[100:300, 200:400] = astronaut_face_patch(200)
    assert scan.submit(frame)
    found = scan.take()
    assert len(found) == 1 and scan.take() == [] and scan.scans == 1
    assert scan.submit(np.zeros((4, 4, 5), np.uint8))          # OpenCV refuses: counted
    assert scan.take() == [] and scan.failures == 1 and scan.error


def test_pipeline_without_scan_thread_serves_due_frames_with_windows():
    patch = astronaut_face_patch(200)
    pipe = FacePipeline(HaarFaceDetector(), FaceTracker(min_hits=2), None,
                        schedule=ScanSchedule(5), background=True, scan_thread=False)
    assert isinstance(pipe.background, DeferredScan)
    in_line = []
    for i in range(12):
        frame = np.full((480, 640, 3), 100, np.uint8)
        frame[20:220, 20:220] = patch
        in_line.append(pipe.process(frame, i / 30.0).full_scan)
    assert in_line[0] and not any(in_line[1:])                 # as with the worker thread
    assert pipe.background.scans >= 2
    p = {s.name: s.default for s in FACE_PARAMS}
    assert isinstance(build_face_pipeline(p, scan_thread=False).background, DeferredScan)
