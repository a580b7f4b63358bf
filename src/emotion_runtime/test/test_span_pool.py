"""voice_windows.SpanPool: the running decision over a voiced span of the stream."""
import numpy as np
import pytest

from emotion_runtime.voice_windows import SpanPool


def out(pool, stamp, speech, value):
    emb, logits = pool.add(stamp, speech, np.full(4, value, np.float32),
                           np.full(3, -value, np.float32))
    assert emb.shape == (4,) and logits.shape == (3,)
    return float(emb[0]), float(logits[0])


def test_speech_windows_publish_the_mean_of_their_span_so_far():
    pool = SpanPool(hop_s=0.5, hangover_s=0.5)
    assert out(pool, 0.0, True, 1.0) == (1.0, -1.0)
    assert out(pool, 0.5, True, 3.0) == (2.0, -2.0)
    assert out(pool, 1.0, True, 5.0) == (3.0, -3.0)
    assert pool.windows == 3 and pool.spans == 1


def test_windows_without_speech_pass_unchanged_and_a_long_pause_starts_a_new_span():
    pool = SpanPool(hop_s=0.5, hangover_s=0.5)
    out(pool, 0.0, True, 1.0)
    out(pool, 0.5, True, 3.0)
    assert out(pool, 1.0, False, 9.0) == (9.0, -9.0)     # a pause window: its own outputs
    assert out(pool, 1.5, True, 5.0) == (3.0, -3.0)      # 1.0 s after the last: same span
    assert out(pool, 2.0, False, 9.0) == (9.0, -9.0)
    assert out(pool, 2.5, False, 9.0) == (9.0, -9.0)
    assert out(pool, 3.0, True, 7.0) == (7.0, -7.0)      # 1.5 s > hop + hangover: new span
    assert pool.spans == 2 and pool.windows == 1


def test_hangover_zero_splits_at_any_pause_window_and_reset_closes_the_span():
    pool = SpanPool(hop_s=0.5, hangover_s=0.0)
    out(pool, 0.0, True, 1.0)
    out(pool, 0.5, False, 9.0)
    assert out(pool, 1.0, True, 3.0) == (3.0, -3.0)
    pool.reset()
    assert pool.windows == 0
    assert out(pool, 1.5, True, 5.0) == (5.0, -5.0)


def test_max_seconds_bounds_the_pool():
    pool = SpanPool(hop_s=0.5, hangover_s=0.5, max_s=1.0)
    for k, v in enumerate((1.0, 2.0, 3.0, 4.0)):
        last = out(pool, 0.5 * k, True, v)
    assert last == (3.0, -3.0) and pool.windows == 3     # the windows at 0.5, 1.0, 1.5 s


@pytest.mark.parametrize('args', [(0.0, 0.5, 10.0), (0.5, -1.0, 10.0), (0.5, 0.5, 0.0)])
def test_bad_settings_are_refused(args):
    with pytest.raises(ValueError, match='span pooling'):
        SpanPool(*args)
