"""Speaker normalisation: the statistics, their prior, forgetting, and the bundle/pipeline use."""
import json

import numpy as np
import pytest

from emotion_runtime.speaker_calibration import SpeakerCalibration, normalise_by_speaker, speaker_section

BANDS = 4


def _section(prior_frames: float = 0.0) -> dict:
    return {'type': 'speaker', 'mean': [0.0] * BANDS, 'std': [1.0] * BANDS,
            'prior_frames': prior_frames}


def test_a_speaker_is_normalised_by_its_own_statistics_per_band():
    rng = np.random.default_rng(0)
    a = rng.normal([[3.0], [0.0], [-2.0], [5.0]], 0.5, (30, BANDS, 50)).astype(np.float32)
    b = rng.normal(-4.0, 2.0, (20, BANDS, 50)).astype(np.float32)
    z = normalise_by_speaker(np.concatenate([a, b]), ['a'] * 30 + ['b'] * 20, _section())
    for part in (z[:30], z[30:]):
        np.testing.assert_allclose(part.mean(axis=(0, 2)), 0.0, atol=1e-3)
        np.testing.assert_allclose(part.std(axis=(0, 2)), 1.0, atol=1e-3)


def test_the_prior_holds_until_speech_outweighs_it():
    cal = SpeakerCalibration.from_manifest(_section(prior_frames=100))
    mean, std = cal.stats()
    np.testing.assert_allclose(mean, 0.0)
    np.testing.assert_allclose(std, 1.0)
    cal.update(np.full((BANDS, 100), 4.0))          # as much speech as the prior weighs
    mean, std = cal.stats()
    np.testing.assert_allclose(mean, 2.0, atol=1e-6)
    # variances are shrunk, not second moments: the mean gap must not inflate the spread
    np.testing.assert_allclose(std, np.sqrt(0.5), atol=1e-6)
    cal.update(np.full((BANDS, 100_000), 4.0))
    assert cal.stats()[0] == pytest.approx(np.full(BANDS, 4.0), abs=0.01)
    cal.reset()
    np.testing.assert_allclose(cal.stats()[0], 0.0)


def test_online_calibration_forgets_an_earlier_speaker():
    cal = SpeakerCalibration.from_manifest(_section(), half_life_frames=1000)
    cal.update(np.full((BANDS, 5000), -3.0))
    assert cal.stats()[0][0] == pytest.approx(-3.0)
    for _ in range(100):                             # 10 half-lives of a new voice
        cal.update(np.full((BANDS, 100), 3.0))
    assert cal.stats()[0][0] > 2.95
    offline = SpeakerCalibration.from_manifest(_section())
    offline.update(np.full((BANDS, 5000), -3.0))
    offline.update(np.full((BANDS, 5000), 3.0))
    assert offline.stats()[0][0] == pytest.approx(0.0, abs=1e-6)


def test_bad_shapes_and_sections_are_named():
    cal = SpeakerCalibration.from_manifest(_section())
    with pytest.raises(ValueError, match=r'expected log-mel \[\.\.\., 4, T\]'):
        cal.update(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="not 'speaker'"):
        SpeakerCalibration.from_manifest({'type': 'global', 'mean': 0, 'std': 1})
    with pytest.raises(ValueError, match='std must be > 0'):
        SpeakerCalibration([0.0], [0.0], 10)
    with pytest.raises(ValueError, match='2 speaker ids for 3 windows'):
        normalise_by_speaker(np.zeros((3, BANDS, 5)), ['a', 'b'], _section())


def test_speaker_section_holds_population_band_statistics():
    x = np.stack([np.full((1, BANDS, 10), v, np.float32) for v in (1.0, 3.0)])
    sec = speaker_section(x, prior_seconds=2.0, hop_length=160, sample_rate=16000)
    assert sec['type'] == 'speaker' and sec['prior_frames'] == 200.0
    np.testing.assert_allclose(sec['mean'], 2.0)
    np.testing.assert_allclose(sec['std'], 1.0, atol=1e-4)


def test_a_speaker_bundle_is_refused_when_its_statistics_do_not_fit(speaker_bundle, tmp_path):
    import shutil

    from emotion_runtime.model_bundle import BundleError, load_manifest
    assert load_manifest(speaker_bundle)['vocal']['normalisation']['type'] == 'speaker'
    bad = tmp_path / 'bad'
    shutil.copytree(speaker_bundle, bad)
    m = json.loads((bad / 'manifest.json').read_text())
    m['vocal']['normalisation']['mean'] = [0.0] * 10
    m['vocal']['normalisation']['std'] = [1.0] * 10
    (bad / 'manifest.json').write_text(json.dumps(m))
    with pytest.raises(BundleError, match='10 band means for 64 mel bands'):
        load_manifest(bad)
    m['vocal']['normalisation'] = {'type': 'speaker', 'mean': [0.0] * 64}
    (bad / 'manifest.json').write_text(json.dumps(m))
    with pytest.raises(BundleError, match='type speaker is invalid'):
        load_manifest(bad)


def test_the_pipeline_calibrates_on_speech_only(speaker_bundle, speech_file):
    import soundfile as sf

    from emotion_perception.voice_pipeline import VoicePipeline
    from emotion_runtime.model_bundle import ModelBundle
    bundle = ModelBundle.load(speaker_bundle)
    assert bundle.speaker_normalised
    path, _, _ = speech_file
    audio, rate = sf.read(str(path), dtype='float32')     # mono (perception_media.speech_wav)
    silence = np.zeros(rate * 3, np.float32)
    pipe = VoicePipeline(bundle, bundle.window_seconds, bundle.hop_seconds,
                         speaker_half_life_seconds=300.0)
    fixed = VoicePipeline(bundle, bundle.window_seconds, bundle.hop_seconds,
                          speaker_half_life_seconds=None)
    assert fixed.calibration is None and pipe.calibration is not None
    _, out = pipe.push(0.0, rate, silence)
    assert out and not any(w.speech for w in out)
    assert pipe.calibration_seconds() == 0.0          # silence does not calibrate
    _, out = pipe.push(3.0, rate, audio)
    fixed.push(0.0, rate, silence)
    _, ref = fixed.push(3.0, rate, audio)
    speech = [w for w in out if w.speech]
    assert speech and pipe.calibration_seconds() > 0.5 * len(speech) * bundle.window_seconds
    # the window is encoded from input normalised by the learnt statistics, not the prior
    last = out[-1]
    calibrated = bundle.voice_input(last.samples, rate, pipe.calibration)
    population = bundle.voice_input(last.samples, rate)
    assert np.abs(calibrated - population).mean() > 0.1
    emb, _ = bundle.encode_voice_logmel(calibrated[None])
    np.testing.assert_allclose(last.embedding, emb[0], atol=1e-6)
    ref_emb, _ = bundle.encode_voice_logmel(population[None])
    np.testing.assert_allclose(ref[-1].embedding, ref_emb[0], atol=1e-6)
