"""TrackerCore: tracking -> lost -> holding -> searching -> idle, and FAULT on link loss."""
from robot_tracker.controller import ControllerConfig, PanTiltController
from robot_tracker.search import LostTargetBehaviour, Mode, SearchConfig
from robot_tracker.target_selection import FaceObs, TargetSelector
from robot_tracker.tracker_core import TrackerCore


def make():
    return TrackerCore(TargetSelector(), PanTiltController(ControllerConfig()),
                       LostTargetBehaviour(SearchConfig(hold_time=0.5, search_time=1.0)), 0.3)


def test_mode_sequence():
    core = make()
    assert core.step(0.0).mode == Mode.IDLE
    core.on_faces([FaceObs('f1', 0.5, 0.0, 0.05, 0.9)], 0.0, 0.0)
    r = core.step(0.02)
    assert r.mode == Mode.TRACKING and r.target_id == 'f1' and r.error_x == 0.5 and r.pan < 0
    assert core.step(0.4).mode == Mode.HOLDING
    assert core.step(1.0).mode == Mode.SEARCHING
    assert core.step(2.0).mode == Mode.IDLE
    assert core.step(2.0, link_fault=True).mode == Mode.FAULT


def test_empty_face_arrays_keep_the_target_until_timeout():
    core = make()
    core.on_faces([FaceObs('f1', 0.1, 0.0, 0.05, 0.9)], 0.0, 0.0)
    core.on_faces([], 0.1, 0.1)
    assert core.step(0.2).mode == Mode.TRACKING
