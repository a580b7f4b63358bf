"""Property-based tests (hypothesis) over every field of emotion_msgs/Face as the tracker reads
it: any box is either a usable observation (finite, normalised) or refused with one of the
reasons of emotion_runtime.face_boxes; nothing raises, and a good face is still selected after
bad ones."""
from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from emotion_runtime.face_boxes import BOX_REJECT_REASONS
from robot_tracker.target_selection import TargetSelector, face_box_reason, face_from_box

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True)
f32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
u32 = st.integers(0, 2**32 - 1)


@SETTINGS
@given(x=f32, y=f32, w=f32, h=f32, iw=u32, ih=u32, conf=f32, fid=st.text(max_size=8))
def test_any_face_box_is_normalised_or_refused_with_a_reason(x, y, w, h, iw, ih, conf, fid):
    reason = face_box_reason(x, y, w, h, iw, ih, conf)
    obs = face_from_box(fid, x, y, w, h, iw, ih, conf)
    if reason is not None:
        assert reason in BOX_REJECT_REASONS and obs is None
        return
    assert obs is not None
    assert all(math.isfinite(v) for v in (obs.error_x, obs.error_y, obs.area, obs.confidence))
    assert -1.0 <= obs.error_x <= 1.0 and -1.0 <= obs.error_y <= 1.0 and 0.0 < obs.area <= 1.0
    # a usable box lies inside the image (10 % tolerance per side)
    assert -0.1 * iw <= x and x + w <= 1.1 * iw and -0.1 * ih <= y and y + h <= 1.1 * ih
    sel = TargetSelector('largest', min_confidence=0.0)
    good = face_from_box('good', 300, 200, 40, 40, 640, 480, 0.9)
    assert sel.select([obs, good]) is not None


def test_the_audit_boxes_are_refused_by_reason():
    assert face_box_reason(float('inf'), 100, 50, 50, 640, 480, 0.9) == 'non_finite_box'
    assert face_box_reason(100, float('nan'), 50, 50, 640, 480, 0.9) == 'non_finite_box'
    assert face_box_reason(100, 100, -50, 50, 640, 480, 0.9) == 'empty_box'
    assert face_box_reason(100, 100, 50, 0, 640, 480, 0.9) == 'empty_box'
    assert face_box_reason(5000, 100, 50, 50, 640, 480, 0.9) == 'box_outside_image'
    assert face_box_reason(100, 100, 50, 50, 0, 480, 0.9) == 'bad_image_size'
    assert face_box_reason(100, 100, 50, 50, 640, 480, float('nan')) == 'non_finite_confidence'
    assert face_box_reason(-20, 100, 60, 50, 640, 480, 0.9) is None     # at the edge: usable
