"""Lost-target behaviour: hold, search (towards where the face went), home."""
import math

from robot_tracker.search import LostTargetBehaviour, Mode, SearchConfig


def test_hold_then_search_then_home():
    cfg = SearchConfig(hold_time=1.0, search_time=6.0, pan_amplitude=math.radians(60), period=6.0)
    b = LostTargetBehaviour(cfg)
    b.lost(10.0, last_pan=0.0, last_error_x=0.8)  # face left the image on the right
    assert b.update(10.5) == (Mode.HOLDING, None)
    mode, pose = b.update(11.5)
    assert mode == Mode.SEARCHING and pose[0] < 0  # sweeps right (negative pan) first
    pans = [b.update(11.0 + i * 0.05)[1][0] for i in range(120)]
    assert min(pans) >= -cfg.pan_amplitude - 1e-9 and max(pans) <= cfg.pan_amplitude + 1e-9
    assert max(pans) > math.radians(50) and min(pans) < math.radians(-50)  # covers both sides
    assert b.update(17.5) == (Mode.IDLE, (0.0, 0.0))
    b.found()
    assert b.update(18.0) == (Mode.TRACKING, None)


def test_search_starts_left_when_face_left_on_the_left():
    b = LostTargetBehaviour(SearchConfig(hold_time=0.0))
    b.lost(0.0, last_pan=0.2, last_error_x=-0.9)
    assert b.update(0.1)[1][0] > 0.2
