"""emotion_runtime.rep155: our labels -> REP-155 expression names, ids, topics, ROIs, and the
bookkeeping of faces read from /humans/faces/* (no rclpy)."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from emotion_runtime.rep155 import (
    LABEL_TO_EXPRESSION,
    REP155_EXPRESSIONS,
    HriFaceInput,
    HriFaceTable,
    expression_name,
    face_topic,
    faces_tracked_topic,
    id_token,
    normalize_prefix,
    normalized_roi,
    voice_topic,
    voices_tracked_topic,
)

ROOT = Path(__file__).resolve().parents[3]


def test_every_label_of_the_project_maps_to_a_rep155_name():
    ours = ('angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise')
    assert {lab: expression_name(lab) for lab in ours} == {
        'angry': 'angry', 'disgust': 'disgusted', 'fear': 'scared', 'happy': 'happy',
        'neutral': 'neutral', 'sad': 'sad', 'surprise': 'surprised'}
    assert all(expression_name(lab) in REP155_EXPRESSIONS for lab in ours)
    assert all(expression_name(n) == n for n in REP155_EXPRESSIONS)   # already REP-155: kept
    assert set(LABEL_TO_EXPRESSION.values()) <= set(REP155_EXPRESSIONS)


def test_names_match_the_hri_msgs_expression_constants():
    text = (ROOT / 'src' / 'hri_msgs' / 'msg' / 'Expression.msg').read_text()
    constants = re.findall(r'^string [A-Z_]+ = "([a-z]+)"', text, re.MULTILINE)
    assert tuple(constants) == REP155_EXPRESSIONS


def test_ids_topics_and_prefix():
    assert id_token('f3') == 'f3' and id_token('3') == 'id_3' and id_token('a-b') == 'a_b'
    assert faces_tracked_topic() == '/humans/faces/tracked'
    assert face_topic('/humans/', 'f1', 'expression') == '/humans/faces/f1/expression'
    assert face_topic('robot/humans', '7', 'roi') == 'robot/humans/faces/id_7/roi'
    assert voices_tracked_topic('/h') == '/h/voices/tracked'
    assert voice_topic('/humans', 'voice', 'is_speaking') == '/humans/voices/voice/is_speaking'
    assert normalize_prefix('/humans//') == '/humans'
    with pytest.raises(ValueError):
        normalize_prefix('/')


def test_normalized_roi_clips_and_refuses_empty_boxes():
    assert normalized_roi(100, 80, 120, 140, 640, 480) == pytest.approx(
        (100 / 640, 80 / 480, 220 / 640, 220 / 480))
    assert normalized_roi(-10, -10, 700, 50, 640, 480) == pytest.approx((0.0, 0.0, 1.0, 40 / 480))
    assert normalized_roi(0, 0, 0, 10, 640, 480) is None
    assert normalized_roi(0, 0, 10, 10, 0, 480) is None


def test_face_table_follows_the_tracked_list():
    t = HriFaceTable()
    assert t.set_tracked(['f1', 'f2']) == (['f1', 'f2'], [])
    assert t.set_roi('f1', 0.1, 0.1, 0.3, 0.4, 0.9)
    assert not t.set_roi('f2', 0.5, 0.5, 0.4, 0.9, 0.9)          # xmax < xmin
    assert not t.set_roi('f2', 0.5, 0.5, 1.4, 0.9, 0.9)          # outside [0, 1]
    assert [f.id for f in t.faces()] == ['f1'] and t.bad_rois == 2
    assert t.faces()[0].width == pytest.approx(0.2)
    assert t.set_tracked(['f2', 'f3']) == (['f3'], ['f1'])
    assert t.faces() == []                                         # f1's ROI is gone


def test_face_input_subscribes_per_tracked_id():
    subs, got = {}, []

    def subscribe(topic, cb):
        subs[topic] = cb
        return topic

    def unsubscribe(handle):
        subs.pop(handle)

    src = HriFaceInput('/humans', subscribe, unsubscribe, lambda faces, ns: got.append(faces))
    assert src.tracked_topic == '/humans/faces/tracked'
    src.on_tracked(['f1'], 1)
    assert list(subs) == ['/humans/faces/f1/roi'] and got[-1] == []
    stamp = SimpleNamespace(sec=2, nanosec=5)
    subs['/humans/faces/f1/roi'](SimpleNamespace(header=SimpleNamespace(stamp=stamp), xmin=0.1,
                                                 ymin=0.2, xmax=0.3, ymax=0.5, c=0.8))
    src.on_tracked(['f1'], 3)
    assert [(f.id, f.stamp_ns) for f in got[-1]] == [('f1', 2_000_000_005)]
    src.on_tracked(['f2'], 4)
    assert list(subs) == ['/humans/faces/f2/roi'] and got[-1] == []
    src.close()
    assert subs == {}
