"""Alignment edge cases: slop, late, out-of-order, duplicates, empty buffers, bounds."""
import numpy as np
import pytest

from emotion_fusion.features import MODALITY_VISION, MODALITY_VOICE, Feature
from emotion_fusion.time_alignment import DropReason, StreamBuffer, TimeAligner, interval_distance_ns

S = 1_000_000_000
MS = 1_000_000


def vis(t_ns, sid='f1'):
    return Feature(t_ns, sid, MODALITY_VISION, np.ones(4, np.float32))


def voc(t_ns, speech=True, sid='voice'):
    return Feature(t_ns, sid, MODALITY_VOICE, np.ones(3, np.float32), speech=speech)


def aligner(**kw):
    args = dict(slop_ns=200 * MS, vision_max_age_ns=500 * MS, voice_max_age_ns=2 * S,
                queue_size=5, max_faces=4, voice_window_ns=0)
    args.update(kw)
    return TimeAligner(**args)


def test_empty_buffers_give_nothing():
    a = aligner()
    assert a.latest_vision(10 * S) == {}
    assert a.voice_for(10 * S, 10 * S) is None
    assert a.voice_for(None, 10 * S) is None
    a.prune(10 * S)
    assert all(v == 0 for v in a.drops().values())


def test_late_message_dropped_and_counted():
    a = aligner()
    now = 10 * S
    assert a.add_vision(vis(now - 600 * MS), now) == DropReason.LATE
    assert a.add_vision(vis(now - 400 * MS), now) is None
    assert a.add_voice(voc(now - 3 * S), now) == DropReason.LATE
    d = a.drops()
    assert d['late'] == 2 and d['vision.late'] == 1 and d['voice.late'] == 1


def test_out_of_order_and_duplicate_dropped_per_source():
    a = aligner()
    now = 10 * S
    assert a.add_vision(vis(now - 100 * MS, 'f1'), now) is None
    assert a.add_vision(vis(now - 100 * MS, 'f1'), now) == DropReason.DUPLICATE
    assert a.add_vision(vis(now - 200 * MS, 'f1'), now) == DropReason.OUT_OF_ORDER
    # another face has its own order
    assert a.add_vision(vis(now - 200 * MS, 'f2'), now) is None
    d = a.drops()
    assert d['duplicate'] == 1 and d['out_of_order'] == 1
    assert a.latest_vision(now)['f1'].stamp_ns == now - 100 * MS


def test_future_stamp_dropped():
    a = aligner()
    assert a.add_vision(vis(11 * S), 10 * S) == DropReason.FUTURE


def test_latest_vision_per_face_and_expiry():
    a = aligner()
    a.add_vision(vis(10 * S, 'f1'), 10 * S)
    a.add_vision(vis(10 * S + 100 * MS, 'f1'), 10 * S + 100 * MS)
    a.add_vision(vis(10 * S, 'f2'), 10 * S)
    got = a.latest_vision(10 * S + 400 * MS)
    assert list(got) == ['f1', 'f2'] and got['f1'].stamp_ns == 10 * S + 100 * MS
    # f2 now older than max_age (0.5 s), f1 not yet
    got = a.latest_vision(10 * S + 550 * MS)
    assert list(got) == ['f1']
    a.prune(10 * S + 700 * MS)
    assert a.vision.sources() == []


def test_voice_within_slop_nearest_wins_ties_newest():
    a = aligner(slop_ns=200 * MS)
    now = 10 * S
    for t in (now - 900 * MS, now - 500 * MS, now - 300 * MS):
        assert a.add_voice(voc(t), now) is None
    assert a.voice_for(now - 450 * MS, now).stamp_ns == now - 500 * MS
    assert a.voice_for(now - 400 * MS, now).stamp_ns == now - 300 * MS  # tie -> newest
    assert a.voice_for(now, now) is None  # 300 ms away > slop
    assert a.voice_for(now - 100 * MS, now).stamp_ns == now - 300 * MS  # exactly slop
    # audio-only: the newest
    assert a.voice_for(None, now).stamp_ns == now - 300 * MS


def test_voice_window_length_counts_as_covered():
    a = aligner(slop_ns=0, voice_window_ns=1 * S)
    now = 10 * S
    a.add_voice(voc(now - 1500 * MS), now)
    assert a.voice_for(now - 600 * MS, now).stamp_ns == now - 1500 * MS  # inside the window
    assert a.voice_for(now - 400 * MS, now) is None                      # 100 ms after its end
    assert interval_distance_ns(5, 10, 10) == 5
    assert interval_distance_ns(15, 10, 10) == 0
    assert interval_distance_ns(25, 10, 10) == 5


def test_voice_without_speech_skipped_when_required():
    a = aligner()
    now = 10 * S
    a.add_voice(voc(now - 100 * MS, speech=False), now)
    assert a.voice_for(None, now, require_speech=True) is None
    assert a.voice_for(None, now, require_speech=False) is not None


def test_queue_and_sources_are_bounded():
    buf = StreamBuffer(queue_size=3, max_age_ns=10 * S, max_sources=2)
    for i in range(10):
        assert buf.push(vis(i * MS, 'a'), 0) is None
    assert len(buf) == 3
    buf.push(vis(1 * MS, 'b'), 0)
    buf.push(vis(1 * MS, 'c'), 0)   # 'a' pushed least recently -> evicted
    assert sorted(buf.sources()) == ['b', 'c']
    assert len(buf) == 2


def test_source_may_restart_after_going_silent():
    """A restarted encoder (clock reset) is not out of order once its old entries aged out."""
    buf = StreamBuffer(queue_size=3, max_age_ns=1 * S, max_sources=2)
    buf.push(vis(5 * S), 5 * S)
    buf.prune(7 * S)
    assert buf.push(vis(6 * S + 500 * MS), 7 * S) is None


@pytest.mark.parametrize('bad', [dict(queue_size=0), dict(max_faces=0)])
def test_bad_bounds_raise(bad):
    with pytest.raises(ValueError):
        aligner(**bad)
