"""Silero VAD wrapper: the shipped file, speech vs silence, streaming = one shot, reset, fallback."""
import os
import pathlib

import numpy as np
import pytest
import soundfile as sf

from emotion_perception.node_params import VOCAL_PARAMS
from emotion_perception.voice_activity import (
    SILERO_SHA256,
    EnergyVad,
    SileroModel,
    SileroVad,
    VadModelError,
    default_silero_path,
)
from emotion_perception.voice_pipeline import build_voice_pipeline
from emotion_runtime.model_bundle import sha256_of
from emotion_runtime.preprocess import resample

RATE = 16000
DATA = pathlib.Path(os.environ.get('EMOTION_DATA')
                    or pathlib.Path(__file__).resolve().parents[3].parent / 'shared' / 'data')
RAVDESS_CLIP = DATA / 'ravdess' / 'Actor_01' / '03-01-01-01-01-01-01.flac'


@pytest.fixture(scope='module')
def model():
    return SileroModel.load()


@pytest.fixture(scope='module')
def speech(speech_file):
    """(16 kHz samples, start, end): a RAVDESS clip when the data is there, else espeak-ng."""
    if RAVDESS_CLIP.is_file():
        x, sr = sf.read(RAVDESS_CLIP, dtype='float32')
        level = np.convolve(x ** 2, np.ones(320) / 320, 'same')
        loud = np.flatnonzero(level > level.max() * 1e-3)
        return x, loud[0] / sr, loud[-1] / sr
    path, start, end = speech_file
    x, sr = sf.read(path, dtype='float32')
    return resample(x, sr, RATE), start, end


def default_params(**over):
    p = {s.name: s.default for s in VOCAL_PARAMS}
    p.update(over)
    return p


def test_shipped_file_is_the_pinned_one():
    path, shipped = default_silero_path()
    assert shipped and path.is_file()
    assert sha256_of(path) == SILERO_SHA256
    # the silero-vad 6.2.3 wheel's RECORD entry for silero_vad/data/silero_vad.onnx
    assert SILERO_SHA256 == '1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3'


def test_model_io(model):
    names = {i.name: i.shape for i in model.session.get_inputs()}
    assert set(names) == {'input', 'state', 'sr'} and names['state'][0] == 2
    p, state = model.step(np.zeros(576, np.float32), model.new_state())
    assert 0.0 <= p < 0.1 and state.shape == (2, 1, 128)


def test_silence_is_not_speech_and_speech_is(model, speech):
    x, start, end = speech
    vad = SileroVad(RATE, model)
    quiet = (np.random.default_rng(0).standard_normal(3 * RATE) * 1e-3).astype(np.float32)
    assert not vad.process(np.zeros(2 * RATE, np.float32)).any()
    assert not vad.process(quiet).any()
    vad.reset()
    probs = vad.probabilities(x)
    t = (np.arange(probs.size) + 0.5) * 512 / RATE
    assert probs[t < start - 0.1].max() < 0.5                    # leading silence
    inside = probs[(t > start + 0.2) & (t < end - 0.2)]
    assert np.mean(inside > 0.5) > 0.7                           # pauses between words exist


def test_synthetic_voiced_signal_is_not_called_speech(model):
    """A steady 'vowel' (150 Hz pulse train through formant-like resonances): the model is
    trained on real speech and gives it a low probability, which is why the tests use real or
    espeak-ng speech.  Recorded here so a model change that differs shows up."""
    t = np.arange(2 * RATE) / RATE
    x = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 30)).astype(np.float32)
    x *= 0.1 / np.sqrt(np.mean(x ** 2))
    probs = SileroVad(RATE, model).probabilities(x)
    assert probs.mean() < 0.5


@pytest.mark.parametrize('rate', [16000, 44100, 48000])
def test_streaming_in_chunks_equals_one_shot(model, speech, rate):
    x = speech[0] if rate == RATE else resample(speech[0], RATE, rate)
    vad = SileroVad(rate, model)
    whole = vad.process(x)
    vad.reset()
    rng, pos, parts = np.random.default_rng(1), 0, []
    while pos < x.size:
        n = int(rng.integers(1, 3000))
        parts.append(vad.process(x[pos:pos + n]))
        pos += n
    chunks = np.concatenate(parts)
    assert whole.size == chunks.size > 0 and np.array_equal(whole, chunks)
    assert whole.size >= x.size // vad.frame - 8             # at most a block behind
    assert whole.any() and not whole.all()


def test_preroll_marks_the_audio_before_each_onset(model, speech):
    """Frame i is speech with pre-roll P when one of frames i..i+P is speech without it; the
    flags come out P frames later, chunked or not, and reset empties the held frames."""
    x = speech[0]
    plain = SileroVad(RATE, model, hangover_seconds=0.0).process(x)
    vad = SileroVad(RATE, model, hangover_seconds=0.0, preroll_seconds=0.08)
    assert vad.preroll_frames == 4
    pre = vad.process(x)
    assert pre.size == plain.size - 4
    expected = np.array([plain[i:i + 5].any() for i in range(plain.size - 4)])
    assert np.array_equal(pre, expected)
    onsets = np.flatnonzero(plain[1:] & ~plain[:-1]) + 1
    assert onsets.size and all(pre[o - 4:o].all() for o in onsets if o >= 4)
    assert pre.sum() > plain[:pre.size].sum()
    vad.reset()
    parts = [vad.process(x[i:i + 700]) for i in range(0, x.size, 700)]
    assert np.array_equal(np.concatenate(parts), pre)
    with pytest.raises(ValueError, match='preroll'):
        SileroVad(RATE, model, preroll_seconds=-0.1)


def test_pipeline_passes_the_preroll(model):
    pipe = build_voice_pipeline(default_params(vad_silero_preroll_seconds=0.1))
    pipe.push(0.0, RATE, np.zeros(1600, np.float32))
    assert isinstance(pipe.vad, SileroVad) and pipe.vad.preroll_frames == 5


def test_probabilities_match_one_shot_state_handling(model, speech):
    """Frame-by-frame through process() equals the model run over the whole clip."""
    x = speech[0]
    vad = SileroVad(RATE, model)
    a = vad.probabilities(x)
    vad.reset()
    b = np.concatenate([vad.probabilities(x[i:i + 100]) for i in range(0, x.size, 100)])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_reset_forgets_the_stream(model, speech):
    x = speech[0]
    vad = SileroVad(RATE, model)
    first = vad.probabilities(x)
    vad.probabilities(x[:RATE // 3])                         # leave state and a partial frame
    vad.reset()
    np.testing.assert_allclose(vad.probabilities(x), first, atol=1e-6)
    assert np.isnan(SileroVad(RATE, model).last_probability)


def test_pipeline_uses_silero_by_default():
    pipe = build_voice_pipeline(default_params())
    assert pipe.vad_kind == 'silero' and pipe.vad_error == ''
    pipe.push(0.0, RATE, np.zeros(1600, np.float32))
    assert isinstance(pipe.vad, SileroVad)
    assert build_voice_pipeline(default_params(vad='energy')).vad_kind == 'energy'


def test_missing_model_falls_back_to_energy(tmp_path, monkeypatch):
    missing = tmp_path / 'nowhere' / 'silero_vad.onnx'
    with pytest.raises(VadModelError, match='nowhere'):
        SileroModel.load(missing)
    pipe = build_voice_pipeline(default_params(), vad_model=missing)
    assert pipe.vad_kind == 'energy' and str(missing) in pipe.vad_error
    pipe.push(0.0, RATE, np.zeros(1600, np.float32))
    assert isinstance(pipe.vad, EnergyVad)
    monkeypatch.setenv('EMOTION_VAD_MODEL', str(missing))       # what vocal_node would load
    pipe = build_voice_pipeline(default_params())
    assert pipe.vad_kind == 'energy' and str(missing) in pipe.vad_error


def test_altered_shipped_file_is_refused(tmp_path, monkeypatch):
    import emotion_perception.voice_activity as va
    bad = tmp_path / 'silero_vad.onnx'
    bad.write_bytes(b'not a model')
    monkeypatch.setattr(va, 'default_silero_path', lambda: (bad, True))
    with pytest.raises(VadModelError, match='sha256'):
        SileroModel.load()
