"""Track lifecycle: created at first sight, expired after the timeout, LRU eviction when full."""
import pytest

from emotion_fusion.face_tracks import FaceTracks

S = 1_000_000_000


def tracks(max_tracks=3, timeout=2 * S):
    made = []

    def make(fid):
        made.append(fid)
        return {'id': fid}
    return FaceTracks(max_tracks, timeout, make), made


def test_created_at_first_sight_and_kept_while_seen():
    t, made = tracks()
    tr, removed = t.see('f1', 0)
    assert removed == [] and tr.face_id == 'f1' and made == ['f1']
    tr2, _ = t.see('f1', 1 * S)
    assert tr2 is tr and made == ['f1'] and tr.last_seen_ns == 1 * S


def test_expire_after_timeout():
    t, _ = tracks(timeout=2 * S)
    t.see('f1', 0)
    t.see('f2', 1 * S)
    assert t.expire(2 * S) == []          # exactly the timeout: still alive
    assert t.expire(2 * S + 1) == ['f1']
    assert t.ids() == ['f2'] and t.expired == 1


def test_seen_again_after_timeout_restarts_state():
    t, made = tracks(timeout=2 * S)
    first, _ = t.see('f1', 0)
    again, removed = t.see('f1', 3 * S)
    assert again is not first and made == ['f1', 'f1'] and removed == ['f1']


def test_least_recently_seen_evicted_when_full():
    t, _ = tracks(max_tracks=3)
    for i, fid in enumerate(['a', 'b', 'c']):
        t.see(fid, i)
    t.see('a', 10)                      # 'b' is now the least recently seen
    _, removed = t.see('d', 11)
    assert removed == ['b'] and t.ids() == ['c', 'a', 'd'] and t.evicted == 1
    assert len(t) == 3


def test_bad_bounds():
    with pytest.raises(ValueError):
        FaceTracks(0, S, lambda f: None)
    with pytest.raises(ValueError):
        FaceTracks(1, 0, lambda f: None)
