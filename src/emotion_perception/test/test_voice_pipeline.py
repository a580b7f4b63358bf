"""VAD, stream buffer and sliding windows on espeak-ng speech with silences; bad audio."""
import numpy as np
import pytest
import soundfile as sf

from emotion_perception.audio_buffer import AudioStreamBuffer, ChunkEvent
from emotion_perception.audio_format import AudioFormatError, decode_pcm, encode_pcm, to_mono
from emotion_perception.voice_activity import EnergyVad
from emotion_perception.voice_pipeline import VoicePipeline

T0 = 1_700_000_000.0          # a realistic ROS stamp, so float precision is exercised


def feed(pipe, samples, rate, chunk_s=0.1, t0=T0):
    n = int(chunk_s * rate)
    windows = []
    for i in range(0, len(samples), n):
        windows += pipe.push(t0 + i / rate, rate, samples[i:i + n])[1]
    return windows


def test_vad_flags_speech_not_silence(speech_file):
    path, start, end = speech_file
    x, rate = sf.read(path, dtype='float32')
    vad = EnergyVad(rate)
    flags = np.concatenate([vad.process(x[i:i + 1234]) for i in range(0, len(x), 1234)])
    t = (np.arange(flags.size) + 0.5) * vad.frame / rate
    assert not flags[t < start - 0.1].any()                     # leading noise
    assert not flags[t > end + 0.5].any()                       # trailing noise after hangover
    inside = flags[(t > start + 0.3) & (t < end - 0.3)]
    assert inside.mean() > 0.6                                   # pauses between words exist
    assert -70 < vad.noise_floor_db < -55


@pytest.mark.parametrize('rate', [16000, 44100])
def test_windows_mark_speech_only_where_there_is_speech(speech_file, rate):
    path, start, end = speech_file
    x, sr = sf.read(path, dtype='float32')
    if rate != sr:
        from emotion_runtime.preprocess import resample
        x = resample(x, sr, rate)
    pipe = VoicePipeline(None, window_seconds=1.0, hop_seconds=0.5)
    windows = feed(pipe, x, rate)
    assert len(windows) == int((len(x) / rate - 1.0) / 0.5) + 1
    for k, w in enumerate(windows):
        assert w.stamp == pytest.approx(T0 + 0.5 * k, abs=1e-6)
        assert w.samples.size == rate and w.sample_rate == rate
        a, b = w.stamp - T0, w.stamp - T0 + 1.0
        if b < start - 0.05 or a > end + 0.4:
            assert not w.speech, f'window {a:.1f}-{b:.1f} s is silence'
        if a > start + 0.2 and b < end - 0.2:
            assert w.speech and w.speech_probability > 0.5, f'window {a:.1f}-{b:.1f} s'
    assert 0.0 <= min(w.speech_probability for w in windows)
    assert max(w.speech_probability for w in windows) <= 1.0


def test_windows_are_encoded_with_the_bundle(speech_file, test_bundle):
    from emotion_runtime.model_bundle import ModelBundle
    bundle = ModelBundle.load(test_bundle)
    path, _, _ = speech_file
    x, rate = sf.read(path, dtype='float32')
    pipe = VoicePipeline(bundle, bundle.window_seconds, bundle.hop_seconds)
    windows = feed(pipe, x[:rate * 4], rate)
    assert windows and not pipe.model_error
    for w in windows:
        assert w.embedding.shape == (bundle.voice_embedding_size,)
        assert w.logits.shape == (len(bundle.labels),) and np.isfinite(w.logits).all()


def test_gaps_duplicates_reordering_and_rate_change_are_handled():
    rate = 16000
    buf = AudioStreamBuffer(capacity_seconds=5, tolerance=0.02, max_fill=0.5)
    chunk = np.full(1600, 0.1, np.float32)

    def push(t, r=rate, x=chunk):
        return buf.push(T0 + t, r, x).event

    assert push(0.0) == ChunkEvent.FIRST
    assert push(0.1) == ChunkEvent.OK
    assert push(0.205) == ChunkEvent.OK                # 5 ms jitter: contiguous
    assert buf.end_index == 4800
    assert push(0.3 + 0.2) == ChunkEvent.GAP_FILLED    # 0.2 s lost: filled with silence
    assert buf.end_index == 4800 + 3200 + 1600
    assert buf.get(4800, 8000).max() == 0.0
    assert push(0.5) == ChunkEvent.DUPLICATE           # same chunk again
    assert push(0.3) == ChunkEvent.REORDERED           # the lost one arrives late
    assert push(0.55) == ChunkEvent.OVERLAP_TRIMMED    # half new
    assert buf.end_index == 8000 + 1600 + 800
    assert push(5.0) == ChunkEvent.GAP_RESET           # 4.3 s gap: restart
    assert buf.time_of(buf.start_index) == pytest.approx(T0 + 5.0, abs=1e-6)
    assert push(5.1, r=48000, x=np.zeros(4800, np.float32)) == ChunkEvent.RATE_CHANGED
    assert buf.sample_rate == 48000
    counts = {k: v for k, v in buf.counts.items() if v}
    assert counts == {'first': 1, 'ok': 2, 'gap_filled': 1, 'duplicate': 1, 'reordered': 1,
                      'overlap_trimmed': 1, 'gap_reset': 1, 'rate_changed': 1}


def test_pipeline_survives_irregular_streams_and_keeps_stamps_exact():
    rate = 16000
    pipe = VoicePipeline(None, 1.0, 0.5)
    rng = np.random.default_rng(0)
    chunks = [(T0 + k * 0.1, (rng.standard_normal(1600) * 0.01).astype(np.float32))
              for k in range(60)]
    order = chunks[:10] + [chunks[10]] * 2 + chunks[12:20] + [chunks[21], chunks[20]] + \
        chunks[22:30] + chunks[45:]                  # duplicate, swap, 1.4 s gap -> reset
    windows = []
    for t, x in order:
        windows += pipe.push(t, rate, x)[1]
    c = pipe.buffer.counts
    assert c['duplicate'] == 1 and c['gap_reset'] == 1
    assert c['gap_filled'] + c['reordered'] >= 2
    stamps = [w.stamp - T0 for w in windows]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    assert stamps[0] == pytest.approx(0.0, abs=1e-6)
    assert any(abs(s - 4.5) < 1e-6 for s in stamps)   # windows restart at the new stream
    switched = pipe.push(T0 + 9.0, 48000, np.zeros(48000 * 2, np.float32))[1]
    assert switched and all(w.sample_rate == 48000 for w in switched)
    assert switched[0].stamp == pytest.approx(T0 + 9.0, abs=1e-6)


def test_nan_audio_is_rejected_without_changing_state():
    pipe = VoicePipeline(None, 1.0, 0.5)
    pipe.push(T0, 16000, np.zeros(1600, np.float32))
    bad = np.zeros(1600, np.float32)
    bad[5] = np.nan
    with pytest.raises(AudioFormatError, match='NaN or infinite'):
        pipe.push(T0 + 0.1, 16000, bad)
    bad[5] = np.inf
    with pytest.raises(AudioFormatError):
        encode_pcm(bad, 'F32LE')
    assert pipe.buffer.end_index == 1600
    assert pipe.push(T0 + 0.1, 16000, np.zeros(1600, np.float32))[0].event == ChunkEvent.OK


def test_pcm_codec_round_trip_and_errors():
    x = np.array([[0.5, -0.5], [-1.0, 0.25]], np.float32)
    for enc in ('S16LE', 'F32LE'):
        np.testing.assert_allclose(decode_pcm(encode_pcm(x, enc), enc, 2), x, atol=1e-4)
    assert to_mono(x).tolist() == [0.0, -0.375]
    with pytest.raises(AudioFormatError, match='whole number'):
        decode_pcm(b'\x00\x01\x02', 'S16LE', 1)
    with pytest.raises(AudioFormatError, match='unknown audio encoding'):
        decode_pcm(b'\x00\x01', 'U8', 1)
    nan_bytes = np.array([np.nan, 0.0], '<f4').tobytes()
    from emotion_perception.audio_format import check_finite
    with pytest.raises(AudioFormatError):
        check_finite(decode_pcm(nan_bytes, 'F32LE', 1))


def test_span_pooling_publishes_the_running_mean_of_the_voiced_span(speech_file, test_bundle):
    """Same audio with and without span pooling: each speech window's published outputs are the
    mean of the own outputs of its span's speech windows so far; sizes and stamps unchanged."""
    from emotion_runtime.model_bundle import ModelBundle
    from emotion_runtime.voice_windows import SpanPool
    bundle = ModelBundle.load(test_bundle)
    path, _, _ = speech_file
    x, rate = sf.read(path, dtype='float32')
    x = np.concatenate([x, np.zeros(2 * rate, np.float32), x])     # two spans, 2 s apart
    plain = feed(VoicePipeline(bundle, bundle.window_seconds, bundle.hop_seconds), x, rate)
    pool = SpanPool(bundle.hop_seconds, hangover_s=0.5)
    pooled = feed(VoicePipeline(bundle, bundle.window_seconds, bundle.hop_seconds,
                                span_pool=pool), x, rate)
    assert [w.stamp for w in plain] == [w.stamp for w in pooled]
    assert pool.spans == 2
    span, last = [], None
    for a, b in zip(plain, pooled):
        assert b.embedding.shape == (bundle.voice_embedding_size,)
        np.testing.assert_allclose(b.window_embedding, a.embedding, atol=1e-5)
        if not b.speech:
            np.testing.assert_allclose(b.embedding, a.embedding, atol=1e-5)
            assert b.span_windows == 0
            continue
        if last is not None and b.stamp - last > bundle.hop_seconds + 0.5 + 1e-6:
            span = []
        span.append(a)
        last = b.stamp
        assert b.span_windows == len(span)
        np.testing.assert_allclose(b.embedding, np.mean([w.embedding for w in span], 0),
                                   atol=1e-5)
        np.testing.assert_allclose(b.logits, np.mean([w.logits for w in span], 0), atol=1e-5)


def test_build_voice_pipeline_takes_span_pooling_from_the_parameters(test_bundle):
    from emotion_perception.node_params import VOCAL_PARAMS
    from emotion_perception.voice_pipeline import build_voice_pipeline
    from emotion_runtime.model_bundle import ModelBundle
    bundle = ModelBundle.load(test_bundle)
    p = {s.name: s.default for s in VOCAL_PARAMS}
    assert p['span_pooling'] == 'logits'                 # the default: the decision per span
    p.update(vad='energy', span_hangover_seconds=0.25, span_max_seconds=4.0)
    pipe = build_voice_pipeline(p, bundle)
    assert pipe.span_pool is not None and pipe.span_pool.hangover_s == 0.25
    assert pipe.span_pool.max_s == 4.0 and pipe.span_pool.hop_s == bundle.hop_seconds
    assert not pipe.span_embedding
    p['span_pooling'] = 'all'
    assert build_voice_pipeline(p, bundle).span_embedding
    p['span_pooling'] = 'none'
    assert build_voice_pipeline(p, bundle).span_pool is None
    p['span_pooling'] = True
    with pytest.raises(ValueError, match='span_pooling'):
        build_voice_pipeline(p, bundle)


def test_span_pooling_of_the_logits_keeps_each_windows_embedding(speech_file, test_bundle):
    """span_pooling "logits": the published logits are the span's running mean, the published
    embedding (what the fusion head reads) the window's own."""
    from emotion_runtime.model_bundle import ModelBundle
    from emotion_runtime.voice_windows import SpanPool
    bundle = ModelBundle.load(test_bundle)
    path, _, _ = speech_file
    x, rate = sf.read(path, dtype='float32')
    both = feed(VoicePipeline(bundle, bundle.window_seconds, bundle.hop_seconds,
                              span_pool=SpanPool(bundle.hop_seconds, 0.5)), x, rate)
    logits = feed(VoicePipeline(bundle, bundle.window_seconds, bundle.hop_seconds,
                                span_pool=SpanPool(bundle.hop_seconds, 0.5),
                                span_embedding=False), x, rate)
    pooled = [b for b in both if b.speech and b.span_windows > 1]
    assert pooled                                         # the clip has spans of several windows
    for a, b in zip(both, logits):
        np.testing.assert_allclose(b.embedding, b.window_embedding, atol=0)
        np.testing.assert_allclose(b.logits, a.logits, atol=1e-5)
        assert b.span_windows == a.span_windows
    assert any(not np.allclose(b.logits, b.window_logits) for b in logits if b.span_windows > 1)
