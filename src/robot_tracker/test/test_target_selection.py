"""Target selection policies and hysteresis."""
import pytest

from robot_tracker.target_selection import FaceObs, TargetSelector, face_from_box


def f(fid, area, conf=0.9, ex=0.0):
    return FaceObs(fid, ex, 0.0, area, conf)


def test_face_from_box_normalises_and_rejects_bad_boxes():
    o = face_from_box('a', 480, 180, 160, 120, 640, 480, 0.9)
    assert o.error_x == pytest.approx(0.75) and o.error_y == pytest.approx(0.0)
    assert o.area == pytest.approx(160 * 120 / (640 * 480))
    assert face_from_box('a', 0, 0, 10, 10, 0, 480, 0.9) is None
    assert face_from_box('a', 0, 0, 0, 10, 640, 480, 0.9) is None
    assert face_from_box('a', float('nan'), 0, 10, 10, 640, 480, 0.9) is None


def test_largest_and_confident():
    faces = [f('a', 0.1, 0.9), f('b', 0.2, 0.5)]
    assert TargetSelector('largest').select(faces).id == 'b'
    assert TargetSelector('confident').select(faces).id == 'a'


def test_hysteresis_prevents_hopping():
    sel = TargetSelector('largest', hysteresis=0.3)
    assert sel.select([f('a', 0.10), f('b', 0.09)]).id == 'a'
    # b grows a bit larger, but not 30 % larger: stay on a
    assert sel.select([f('a', 0.10), f('b', 0.12)]).id == 'a'
    # b becomes clearly larger: switch
    assert sel.select([f('a', 0.10), f('b', 0.14)]).id == 'b'
    # and it does not switch back for a small advantage
    assert sel.select([f('a', 0.15), f('b', 0.14)]).id == 'b'


def test_locked_id_and_min_confidence():
    sel = TargetSelector('locked', locked_id='c')
    assert sel.select([f('a', 0.5), f('b', 0.4)]) is None
    assert sel.select([f('a', 0.5), f('c', 0.01)]).id == 'c'
    sel = TargetSelector('largest', min_confidence=0.5)
    assert sel.select([f('a', 0.5, conf=0.2)]) is None


def test_bad_policy_is_a_clear_error():
    with pytest.raises(ValueError, match='policy'):
        TargetSelector('nearest')
