"""Property-based tests (hypothesis) over every field of AudioChunk and Image against the pure
validators and pipelines: any value either passes or raises the module's own validation error,
the work per message is bounded (no hang, no giant allocation), and a good input after bad ones
is still served."""
from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotion_perception.audio_buffer import AudioStreamBuffer, ChunkEvent
from emotion_perception.audio_format import (
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    AudioFormatError,
    check_sample_rate,
    clean_non_finite,
    decode_pcm,
    encode_pcm,
    to_mono,
)
from emotion_perception.image_conversion import ImageConversionError, image_to_numpy, to_bgr8
from emotion_perception.voice_pipeline import VoicePipeline

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
T0 = 1_700_000_000.0
RATE = 16000
#: the most one chunk may cost, however absurd its fields (a 2-core machine under load)
BOUND_S = 2.0

# AudioChunk fields: uint32 sample_rate, uint8 channels, string encoding, uint8[] data, and the
# stamp (sec int32, nanosec uint32) as the node turns it into seconds; plus rates outside uint32
# and non-finite stamps for the pure API.
rates = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([1, 7999, 8000, 192000, 192001,
                                                               4_000_000_000]),
                  st.floats(allow_nan=True, allow_infinity=True))
channels = st.integers(0, 255)
encodings = st.one_of(st.sampled_from(['S16LE', 'F32LE', '', 'U8', 's16le']), st.text(max_size=8))
datas = st.binary(max_size=4096)
stamps = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.builds(lambda s, n: s + n * 1e-9, st.integers(-2**31, 2**31 - 1),
                             st.integers(0, 2**32 - 1)),
                   st.floats(T0 - 100.0, T0 + 100.0))


def _tone(seconds: float = 0.1, rate: int = RATE) -> np.ndarray:
    n = int(round(seconds * rate))
    return (0.1 * np.sin(np.arange(n) * 0.2)).astype(np.float32)


def _serves_good_stream(pipe: VoicePipeline, t: float) -> None:
    """After whatever came before, a fresh contiguous stream gives its windows again."""
    start = max(t, T0) + 1000.0           # far ahead: a reset, whatever the state
    got = []
    for k in range(int(round((pipe.window_seconds + pipe.hop_seconds) / 0.1)) + 2):
        got += pipe.push(start + 0.1 * k, RATE, _tone())[1]
    assert got, 'no window from a good stream after bad input'
    assert all(w.sample_rate == RATE and np.isfinite(w.samples).all() for w in got)


@SETTINGS
@given(rate=rates)
def test_sample_rate_bounds(rate):
    try:
        r = check_sample_rate(rate)
    except AudioFormatError as exc:
        assert exc.reason == 'sample_rate'
        ok = (isinstance(rate, int) or (isinstance(rate, float) and math.isfinite(rate)
                                        and rate == int(rate))) \
            and MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE
        assert not ok
    else:
        assert MIN_SAMPLE_RATE <= r <= MAX_SAMPLE_RATE


@SETTINGS
@given(data=datas, encoding=encodings, ch=channels)
def test_decode_any_bytes_raises_only_audio_format_error(data, encoding, ch):
    try:
        frames = decode_pcm(data, encoding, ch)
    except AudioFormatError as exc:
        assert exc.reason in ('channels', 'encoding', 'data_length')
        return
    assert frames.ndim == 2 and frames.shape[1] == ch and frames.dtype == np.float32
    assert to_mono(frames).shape == (frames.shape[0],)


@SETTINGS
@given(rate=rates, ch=channels, encoding=encodings, data=datas, stamp=stamps)
def test_a_chunk_with_any_fields_is_placed_or_refused_with_bounded_work(rate, ch, encoding, data,
                                                                         stamp):
    """The vocal node's path (check rate, decode, mix, push) on one arbitrary chunk between
    good ones: it never raises anything but AudioFormatError, takes bounded time and memory, and
    a good stream is served afterwards."""
    pipe = VoicePipeline(None, window_seconds=0.5, hop_seconds=0.25)
    for k in range(3):
        pipe.push(T0 + 0.1 * k, RATE, _tone())
    t0 = time.perf_counter()
    try:
        check_sample_rate(rate)
        frames = decode_pcm(data, encoding, ch)
        _, windows = pipe.push(stamp, rate, to_mono(frames))
    except AudioFormatError:
        windows = []
    assert time.perf_counter() - t0 < BOUND_S
    assert len(windows) <= 1 + len(data) // 2     # bounded by what the chunk brought
    assert pipe.buffer._data.size <= pipe.buffer.capacity_seconds * MAX_SAMPLE_RATE
    _serves_good_stream(pipe, stamp if isinstance(stamp, float) and math.isfinite(stamp) else T0)


@SETTINGS
@given(rate=rates, stamp=stamps,
       samples=st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), max_size=64))
def test_pipeline_push_with_any_rate_stamp_and_samples(rate, stamp, samples):
    pipe = VoicePipeline(None, window_seconds=0.5, hop_seconds=0.25)
    x = np.asarray(samples, np.float32)
    t0 = time.perf_counter()
    try:
        pipe.push(stamp, rate, x)
    except AudioFormatError as exc:
        assert exc.reason in ('sample_rate', 'stamp', 'non_finite_samples')
    assert time.perf_counter() - t0 < BOUND_S
    _serves_good_stream(pipe, T0)


@SETTINGS
@given(offsets=st.lists(st.floats(-1e7, 1e7, allow_nan=False), min_size=1, max_size=12),
       rates_=st.lists(st.sampled_from([8000, 16000, 44100, 192000]), min_size=1, max_size=12))
def test_buffer_events_are_bounded_for_any_stamp_sequence(offsets, rates_):
    """Arbitrary stamp jumps (forward, back, far) and rate changes: every push is classified,
    silence filling never exceeds the ring, and the buffer stays within its capacity."""
    buf = AudioStreamBuffer(capacity_seconds=2.0, tolerance=0.02, max_fill=0.5)
    for k, off in enumerate(offsets):
        rate = rates_[k % len(rates_)]
        x = np.zeros(rate // 10, np.float32)
        t0 = time.perf_counter()
        res = buf.push(T0 + off, rate, x)
        assert time.perf_counter() - t0 < BOUND_S
        assert isinstance(res.event, ChunkEvent)
        assert res.samples_added <= x.size + int(0.5 * rate) + 1
        assert buf._data.size <= int(2.0 * rate) + 1


def test_backward_stamp_step_resets_instead_of_reordering():
    buf = AudioStreamBuffer(capacity_seconds=10.0, tolerance=0.02, max_fill=0.5)
    for k in range(10):
        buf.push(T0 + 0.1 * k, RATE, _tone())
    res = buf.push(T0 - 60.0, RATE, _tone())
    assert res.event == ChunkEvent.BACKSTEP_RESET and res.reset
    assert buf.push(T0 - 59.9, RATE, _tone()).event == ChunkEvent.OK
    # a chunk only slightly late is still "reordered" (its slot was filled already)
    assert buf.push(T0 - 60.0, RATE, _tone()).event in (ChunkEvent.DUPLICATE,
                                                         ChunkEvent.REORDERED)


def test_gap_fill_is_capped_by_the_buffer_capacity():
    buf = AudioStreamBuffer(capacity_seconds=1.0, tolerance=0.02, max_fill=1e9)
    buf.push(T0, RATE, _tone())
    assert buf.push(T0 + 5.0, RATE, _tone()).event == ChunkEvent.GAP_RESET
    assert buf._data.size == _tone().size


def test_one_sample_rate_of_1_or_4e9_is_refused_and_the_stream_goes_on():
    pipe = VoicePipeline(None, window_seconds=0.5, hop_seconds=0.25)
    for bad in (1, 4_000_000_000):
        try:
            pipe.push(T0, bad, _tone())
        except AudioFormatError as exc:
            assert exc.reason == 'sample_rate'
        else:
            raise AssertionError(f'sample_rate {bad} accepted')
    _serves_good_stream(pipe, T0)


@SETTINGS
@given(samples=st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=1,
                        max_size=64))
def test_clean_non_finite_replaces_and_counts(samples):
    x = np.asarray(samples, np.float32)
    y, n = clean_non_finite(x)
    assert n == int((~np.isfinite(x)).sum()) and np.isfinite(y).all()
    assert np.array_equal(y[np.isfinite(x)], x[np.isfinite(x)])
    assert len(encode_pcm(y, 'S16LE')) == 2 * x.size


# sensor_msgs/Image fields: uint32 height, width, step; string encoding; uint8 is_bigendian;
# uint8[] data.
image_encodings = st.one_of(st.sampled_from(['bgr8', 'rgb8', 'mono8', 'mono16', 'bgra8', 'rgba16',
                                             'bayer_rggb8', 'bayer_gbrg16', '32FC1', '8UC3',
                                             '64FC4', '16SC2', 'yuv422', '']),
                            st.text(max_size=8))
dims = st.one_of(st.integers(0, 64), st.sampled_from([2**31, 2**32 - 1]))


@SETTINGS
@given(height=dims, width=dims, step=st.one_of(st.integers(0, 512), st.just(2**32 - 1)),
       encoding=image_encodings, big=st.integers(0, 255), data=st.binary(max_size=2048),
       exact=st.booleans())
def test_image_with_any_fields_converts_or_raises_image_conversion_error(height, width, step,
                                                                         encoding, big, data,
                                                                         exact):
    if exact and 0 < height * step <= 4096:     # often give the length the fields promise
        data = (data * (height * step // max(1, len(data)) + 1))[:height * step]
    msg = SimpleNamespace(height=height, width=width, step=step, encoding=encoding,
                          is_bigendian=big, data=data)
    t0 = time.perf_counter()
    try:
        out = to_bgr8(image_to_numpy(msg, use_cv_bridge=False), encoding)
    except ImageConversionError:
        pass
    else:
        assert out.shape == (height, width, 3) and out.dtype == np.uint8
    assert time.perf_counter() - t0 < BOUND_S
    good = SimpleNamespace(height=2, width=2, step=6, encoding='bgr8', is_bigendian=0,
                           data=bytes(range(12)))
    assert to_bgr8(image_to_numpy(good, use_cv_bridge=False), 'bgr8').shape == (2, 2, 3)
