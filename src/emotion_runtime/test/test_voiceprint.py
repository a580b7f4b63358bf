"""The voiceprint member of the voice decision (``emotion_runtime.voiceprint``), on a tiny bundle
built without torch (``emotion_test_tools.tiny_bundle.add_tiny_voiceprint``)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from emotion_runtime.model_bundle import BundleError, ModelBundle, default_bundle_path, load_manifest
from emotion_runtime.speaker_calibration import VoiceCalibration
from emotion_runtime.voiceprint import log_softmax
from emotion_test_tools import tiny_bundle as testing

RATE = 16000
NORM = {'type': 'speaker', 'mean': [-6.0] * 64, 'std': [4.0] * 64, 'prior_frames': 100.0}


@pytest.fixture
def vp_bundle(tmp_path):
    return testing.add_tiny_voiceprint(
        testing.make_tiny_bundle(tmp_path / 'b', vocal_normalisation=NORM), weight=0.5)


def _voices(n: int, seed: int) -> list[np.ndarray]:
    """n one-second windows: tones of different pitch and loudness in a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(RATE) / RATE
    return [((0.02 + 0.05 * k) * np.sin(2 * np.pi * (150 + 90 * k) * t)
             + 0.005 * rng.standard_normal(RATE)).astype(np.float32) for k in range(n)]


def _head(bundle: ModelBundle, vp: np.ndarray, mean, std) -> np.ndarray:
    section = bundle.manifest['vocal']['voiceprint']['head']
    w, b = np.asarray(section['weight'], np.float32), np.asarray(section['bias'], np.float32)
    return ((vp - mean) / std) @ w.T + b


def test_decision_mixes_the_voiceprint_head_into_the_vocal_graph(vp_bundle):
    b = ModelBundle.load(vp_bundle)
    assert 'voiceprint head (weight 0.5)' in b.summary
    wins = _voices(4, 0)
    emb, logits = b.encode_voice_windows(wins, RATE)
    raw, vp = b.voice_features(wins, RATE)
    assert raw.shape[0] == 4 and vp.shape == (4, 8)
    cnn_emb, cnn_logits = b.encode_voice_logmel(b.normalise_voice(raw)[:, None])
    np.testing.assert_allclose(emb, cnn_emb, atol=1e-6)        # the fusion head's input is unchanged
    expected = 0.5 * log_softmax(cnn_logits) + 0.5 * log_softmax(_head(b, vp, 0.0, 0.5))
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    assert (logits.argmax(1) != cnn_logits.argmax(1)).any() or \
        not np.allclose(log_softmax(logits), log_softmax(cnn_logits), atol=1e-3)
    # another rate is resampled for both members, and no window gives empty arrays
    e48, l48 = b.encode_voice_windows([np.repeat(w, 3) for w in wins], 48000)
    assert l48.shape == logits.shape and np.isfinite(l48).all()
    e0, l0 = b.encode_voice_windows([], RATE)
    assert e0.shape == (0, b.voice_embedding_size) and l0.shape == (0, len(b.labels))


def test_quiet_windows_are_raised_to_the_gain_level_before_the_voiceprint():
    from emotion_runtime.voiceprint import Voiceprint
    section = {'file': 'x.onnx', 'n_fft': 400, 'win_length': 400, 'hop_length': 160,
               'n_mels': 10, 'fmin': 0.0, 'fmax': 8000.0, 'gain_dbfs': -30.0, 'weight': 0.5,
               'normalisation': {}, 'head': {'weight': [[0.0]], 'bias': [0.0]}}
    vp = Voiceprint(default_bundle_path(), section, RATE)
    tone = _voices(1, 0)[0]
    quiet, loud = vp.mel(tone * 0.01), vp.mel(tone * 10.0)
    np.testing.assert_allclose(quiet, vp.mel(tone), rtol=1e-4)   # raised to -30 dBFS either way
    rms = float(np.sqrt(np.mean((tone * 10.0) ** 2)))               # -17 dBFS: never lowered
    assert loud.sum() / quiet.sum() == pytest.approx((rms / 10 ** (-30 / 20)) ** 2, rel=0.01)
    assert np.isfinite(vp.mel(np.zeros(RATE, np.float32))).all()    # silence stays silence


def test_calibration_follows_the_speaker_in_both_members_and_resets_together(vp_bundle):
    b = ModelBundle.load(vp_bundle)
    cal = b.new_calibration(300.0)
    assert isinstance(cal, VoiceCalibration)
    assert cal.voiceprint.bands == 8 and cal.voiceprint.half_life_frames == pytest.approx(600)
    wins = _voices(3, 1)
    _, before = b.encode_voice_windows(wins, RATE, cal)             # learn=None: learns nothing
    assert cal.frames == 0 and cal.voiceprint.frames == 0
    _, after = b.encode_voice_windows(wins, RATE, cal, learn=[True, False, True])
    assert cal.voiceprint.frames == pytest.approx(2, rel=0.01) and cal.frames > 0
    assert not np.allclose(before, after, atol=1e-4)
    # the voiceprint is read with the speaker's own statistics, shrunk toward the prior (4 windows)
    raw, vp = b.voice_features(wins, RATE)
    own = vp[[0, 2]]
    k, n = 4.0, 2.0
    mean = (own.sum(0) + 0.0) / (n + k)
    var = (n * own.var(0) + k * 0.5 ** 2) / (n + k)
    _, cnn = b.encode_voice_logmel(b.normalise_voice(raw, cal)[:, None])
    expected = 0.5 * log_softmax(cnn) + 0.5 * log_softmax(_head(b, vp, mean, np.sqrt(var)))
    np.testing.assert_allclose(after, expected, atol=1e-4)
    cal.reset()
    assert cal.frames == 0 and cal.voiceprint.frames == 0
    _, again = b.encode_voice_windows(wins, RATE, cal)
    np.testing.assert_allclose(again, before, atol=1e-6)
    with pytest.raises(ValueError, match='learn has 2 flags for 3 windows'):
        b.encode_voice_windows(wins, RATE, cal, learn=[True, True])


@pytest.mark.parametrize('edit, message', [
    (lambda vp: vp.update(weight=1.5), 'weight must be in'),
    (lambda vp: vp['head'].update(bias=[0.0]), 'head must be weight'),
    (lambda vp: vp.pop('gain_dbfs'), "lacks field.*gain_dbfs"),
    (lambda vp: vp.update(normalisation={'type': 'global'}), 'normalisation must be'),
    (lambda vp: vp.update(file='missing.onnx'), 'has no sha256'),
])
def test_a_broken_voiceprint_section_is_refused_naming_it(vp_bundle, edit, message):
    path = vp_bundle / 'manifest.json'
    m = json.loads(path.read_text())
    edit(m['vocal']['voiceprint'])
    path.write_text(json.dumps(m))
    with pytest.raises(BundleError, match=f'vocal.voiceprint.*{message}|{message}.*voiceprint'):
        load_manifest(vp_bundle)


def test_a_voiceprint_file_from_elsewhere_is_refused(vp_bundle):
    (vp_bundle / 'voiceprint.onnx').write_bytes(b'not this one')
    with pytest.raises(BundleError, match='voiceprint.onnx: sha256 mismatch'):
        ModelBundle.load(vp_bundle)


def test_shipped_voiceprint_records_its_source_and_changes_the_decision():
    """Where the shipped bundle has a voiceprint member, its manifest names the source wheel,
    licence and weights hash, and its head moves the decision on real-shaped input."""
    b = ModelBundle.load(default_bundle_path())
    section = b.manifest['vocal'].get('voiceprint')
    if section is None:
        pytest.skip('the shipped bundle has no voiceprint member')
    assert 'Apache-2.0' in section['source']['licence']
    assert len(section['source']['weights_sha256']) == 64
    assert 'sha256 8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f' in \
        section['source']['wheel']
    wins = _voices(3, 2)
    _, mixed = b.encode_voice_windows(wins, RATE)
    b.voiceprint.weight = 0.0
    _, alone = b.encode_voice_windows(wins, RATE)
    assert not np.allclose(log_softmax(mixed), log_softmax(alone), atol=1e-3)
