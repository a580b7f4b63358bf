"""The vocal log-mel is plain numpy (no JIT on a node's path) and equals librosa's.

``preprocess.logmel`` used ``librosa.feature.melspectrogram``, whose numba code compiled at the
first call (48 s on a fresh venv) inside a node.  It is now numpy/scipy; these tests check that no
node module pulls in librosa, numba or scipy (scipy comes with the first log-mel and the first
face tracker), and that the features, and the shipped bundle's vocal encoder outputs on them, are
librosa's (which stays installed for the tests) on synthetic signals and on real EmoDB / RAVDESS
clips ($EMOTION_DATA, else ``../shared/data`` beside the repository; skipped where absent).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from emotion_runtime import preprocess

VOCAL = {'sample_rate': 16000, 'n_mels': 64, 'n_fft': 512, 'win_length': 400,
         'hop_length': 160, 'fmin': 50.0, 'fmax': 8000.0, 'window_seconds': 1.0,
         'hop_seconds': 0.5, 'normalisation': {'type': 'none'}}
NODE_MODULES = ('emotion_perception.camera_node', 'emotion_perception.microphone_node',
                'emotion_perception.face_node', 'emotion_perception.vocal_node',
                'emotion_fusion.fusion_node', 'robot_tracker.tracker_node')
LOGMEL_TOL = 1e-4      # max abs difference of the natural-log mel power
ENCODER_TOL = 1e-3     # max abs difference of the vocal encoder's embedding and logits


def _librosa_mel_power(samples: np.ndarray, vocal: dict) -> np.ndarray:
    """What ``preprocess._mel_power`` computed before (librosa 0.11, same arguments)."""
    librosa = pytest.importorskip('librosa')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)   # "n_fft too large" for short inputs
        return librosa.feature.melspectrogram(
            y=np.asarray(samples, np.float32), sr=int(vocal['sample_rate']),
            n_fft=int(vocal['n_fft']), win_length=int(vocal['win_length']),
            hop_length=int(vocal['hop_length']), n_mels=int(vocal['n_mels']),
            fmin=float(vocal['fmin']), fmax=float(vocal['fmax']), power=2.0, center=True,
            pad_mode='constant')


def _librosa_logmel(samples: np.ndarray, rate: int, vocal: dict) -> np.ndarray:
    """``preprocess.logmel`` as it was: the same resampling, librosa's mel, the same log."""
    x = np.nan_to_num(preprocess.resample(samples, rate, int(vocal['sample_rate'])))
    return np.log(_librosa_mel_power(x, vocal) + 1e-6).astype(np.float32)


def _fresh_python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter (nothing imported yet); it must exit 0."""
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, PYTHONWARNINGS='ignore'))
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def test_node_modules_import_neither_librosa_nor_numba():
    code = textwrap.dedent(f'''
        import importlib, sys
        import numpy as np
        for name in {NODE_MODULES!r}:
            importlib.import_module(name)
        from emotion_runtime import preprocess
        vocal = {VOCAL!r}
        m = preprocess.logmel(np.random.default_rng(0).standard_normal(16000).astype(np.float32),
                              16000, vocal)
        assert m.shape == (64, 101), m.shape
        print('LOADED', sorted(n for n in ('numba', 'librosa', 'llvmlite') if n in sys.modules))
    ''')
    run = _fresh_python(code)
    assert 'LOADED []' in run.stdout, run.stdout + run.stderr


def test_node_modules_leave_scipy_to_configure():
    """scipy.fft (log-mel) and scipy.optimize (face tracking) cost ~0.5 s and ~1 s to import on a
    cold start: no node module imports scipy, so each node's first /diagnostics does not wait
    for it; the first log-mel and the first FaceTracker (built in face_node's configure) do."""
    code = textwrap.dedent(f'''
        import importlib, sys
        for name in {NODE_MODULES!r}:
            importlib.import_module(name)
        print('AT IMPORT', sorted(n for n in sys.modules if n.split('.')[0] == 'scipy'))
        import numpy as np
        from emotion_runtime import preprocess
        preprocess.logmel(np.zeros(16000, np.float32), 16000, {VOCAL!r})
        from emotion_perception.face_tracking import FaceTracker
        FaceTracker()
        print('AFTER', 'scipy.fft' in sys.modules, 'scipy.optimize' in sys.modules)
    ''')
    run = _fresh_python(code)
    assert 'AT IMPORT []' in run.stdout, run.stdout
    assert 'AFTER True True' in run.stdout, run.stdout


def test_filterbank_is_librosas_and_cached():
    librosa = pytest.importorskip('librosa')
    for sr, n_fft, n_mels, fmin, fmax in [(16000, 512, 64, 50.0, 8000.0),
                                          (22050, 1024, 80, 0.0, 11025.0),
                                          (16000, 400, 40, 300.0, 4000.0)]:
        ours = preprocess.mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
        ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-8)
        assert preprocess.mel_filterbank(sr, n_fft, n_mels, fmin, fmax) is ours
        assert not ours.flags.writeable


@pytest.mark.parametrize('n, rate', [(16000, 16000), (16001, 16000), (300, 16000),
                                     (24000, 48000), (22050, 22050)])
def test_synthetic_matches_librosa(n, rate):
    rng = np.random.default_rng(n)
    t = np.arange(n) / rate
    y = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 2500 * t)
         + 0.02 * rng.standard_normal(n)).astype(np.float32)
    y[: n // 5] = 0.0                                  # digital silence: the log floor
    ours = preprocess.logmel(y, rate, VOCAL)
    ref = _librosa_logmel(y, rate, VOCAL)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    assert float(np.abs(ours - ref).max()) <= LOGMEL_TOL


def test_other_parameters_match_librosa():
    """win_length == n_fft, odd hop, another rate and band: the recipe, not one parameter set."""
    vocal = dict(VOCAL, sample_rate=22050, n_fft=1024, win_length=1024, hop_length=256,
                 n_mels=80, fmin=0.0, fmax=11025.0)
    y = np.random.default_rng(3).standard_normal(22050).astype(np.float32) * 0.1
    ours = preprocess.logmel(y, 22050, vocal)
    ref = _librosa_logmel(y, 22050, vocal)
    assert ours.shape == ref.shape == (80, 1 + 22050 // 256)
    assert float(np.abs(ours - ref).max()) <= LOGMEL_TOL


# --------------------------------------------------------------------------- real clips
def _data_root() -> Path:
    env = os.environ.get('EMOTION_DATA')
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / 'shared' / 'data'


def _real_clips() -> list[Path]:
    root = _data_root()
    emodb = sorted((root / 'emodb' / 'wav').glob('*.wav'))
    ravdess = sorted((root / 'ravdess').glob('Actor_*/*.flac'))
    # a few clips each, spread over speakers and emotions
    pick = lambda paths: paths[len(paths) // 8::max(1, len(paths) // 4)][:4]  # noqa: E731
    return pick(emodb) + pick(ravdess)


@pytest.fixture(scope='module')
def real_clips() -> list[tuple[str, np.ndarray, int]]:
    sf = pytest.importorskip('soundfile')
    paths = _real_clips()
    if not paths:
        pytest.skip(f'no EmoDB/RAVDESS clips under {_data_root()} (set EMOTION_DATA)')
    clips = []
    for p in paths:
        data, rate = sf.read(str(p), dtype='float32', always_2d=True)
        clips.append((p.name, data.mean(axis=1).astype(np.float32), int(rate)))
    return clips


def test_real_clips_logmel_matches_librosa(real_clips):
    worst = {}
    for name, samples, rate in real_clips:
        ours = preprocess.logmel(samples, rate, VOCAL)
        ref = _librosa_logmel(samples, rate, VOCAL)
        assert ours.shape == ref.shape
        worst[name] = float(np.abs(ours - ref).max())
    print('max abs log-mel difference per clip:', worst)
    assert max(worst.values()) <= LOGMEL_TOL, worst


def test_real_clips_bundle_vocal_outputs_match_librosa(real_clips, monkeypatch):
    from emotion_runtime.model_bundle import ModelBundle, default_bundle_path
    from emotion_runtime.voice_windows import windows
    bundle = ModelBundle.load(default_bundle_path(), threads=1)
    diffs = {'logmel': 0.0, 'embedding': 0.0, 'logits': 0.0}
    for _name, samples, rate in real_clips:
        wins = windows(samples, rate, bundle.window_seconds, bundle.hop_seconds)
        mel = bundle.voice_logmels(wins, rate)
        emb, logits = bundle.encode_voice_windows(wins, rate)
        with monkeypatch.context() as m:
            m.setattr(preprocess, '_mel_power', _librosa_mel_power)
            mel_ref = bundle.voice_logmels(wins, rate)
            emb_ref, logits_ref = bundle.encode_voice_windows(wins, rate)
        diffs['logmel'] = max(diffs['logmel'], float(np.abs(mel - mel_ref).max()))
        diffs['embedding'] = max(diffs['embedding'], float(np.abs(emb - emb_ref).max()))
        diffs['logits'] = max(diffs['logits'], float(np.abs(logits - logits_ref).max()))
    print('max abs difference over the clips\' windows:', diffs)
    assert diffs['logmel'] <= LOGMEL_TOL, diffs
    assert diffs['embedding'] <= ENCODER_TOL and diffs['logits'] <= ENCODER_TOL, diffs


def test_log_floor_comes_from_the_manifest():
    """``vocal.log_floor`` is the mel power added before the log: absent, 1e-6; digital silence
    maps to log(floor), and a floor above a quiet room's noise (-60 dBFS white, about 5e-6 per
    band) makes that noise and digital silence read nearly alike, where the default does not."""
    silence = np.zeros(16000, np.float32)
    noise = np.random.default_rng(0).normal(0, 1e-3, 16000).astype(np.float32)
    default = preprocess.logmel(silence, 16000, VOCAL)
    np.testing.assert_allclose(default, np.log(1e-6), atol=1e-5)
    assert preprocess.log_floor(VOCAL) == preprocess.DEFAULT_LOG_FLOOR == 1e-6
    raised = dict(VOCAL, log_floor=1e-4)
    np.testing.assert_allclose(preprocess.logmel(silence, 16000, raised), np.log(1e-4), atol=1e-5)
    gap_default = np.median(preprocess.logmel(noise, 16000, VOCAL) - default)
    gap_raised = np.median(preprocess.logmel(noise, 16000, raised)
                           - preprocess.logmel(silence, 16000, raised))
    assert gap_default > 1.0           # the noise floor lifts silent bins by more than 1 nat
    assert 0 < gap_raised < 0.1        # under a 1e-4 floor it moves them by a few hundredths
    tone = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    loud = preprocess.logmel(tone, 16000, VOCAL).max()
    assert abs(preprocess.logmel(tone, 16000, raised).max() - loud) < 1e-3   # speech unchanged


NOISE_SUBTRACTION = {'fraction': 0.1, 'over': 1.5, 'floor': 0.02}


def test_noise_subtraction_turns_a_steady_floor_into_near_silence_and_keeps_speech():
    """``vocal.noise_subtraction``: a window of speech-like bursts over a -60 dBFS white floor
    reads, in its pauses, within 0.1 nat of the same bursts without the floor (without the step
    the floor lifts them by more than 1 nat); the bursts themselves move by under 0.05 nat; and a
    manifest without the section gives exactly the plain log-mel."""
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    gate = ((t % 0.25) < 0.12).astype(np.float32)            # 120 ms bursts, 130 ms pauses
    speech = (0.1 * gate * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
              ).astype(np.float32)
    noisy = speech + rng.normal(0, 1e-3, t.size).astype(np.float32)
    on = dict(VOCAL, noise_subtraction=NOISE_SUBTRACTION)
    clean_plain = preprocess.logmel(speech, 16000, VOCAL)
    noisy_plain = preprocess.logmel(noisy, 16000, VOCAL)
    noisy_on = preprocess.logmel(noisy, 16000, on)
    frames = clean_plain.shape[1]
    centres = np.arange(frames) * 160 / 16000
    pause = ((centres % 0.25) > 0.16) & ((centres % 0.25) < 0.23)   # well inside the pauses
    assert pause.sum() >= 10
    assert np.median(noisy_plain[:, pause] - clean_plain[:, pause]) > 1.0
    assert abs(np.median(noisy_on[:, pause] - clean_plain[:, pause])) < 0.1
    band = int(np.argmax(clean_plain.mean(axis=1)))                 # the band of the 220 Hz tone
    burst = ((centres % 0.25) > 0.03) & ((centres % 0.25) < 0.09)
    assert np.max(np.abs(noisy_on[band, burst] - noisy_plain[band, burst])) < 0.05
    np.testing.assert_array_equal(preprocess.logmel(noisy, 16000, dict(VOCAL)), noisy_plain)


def test_subtract_noise_estimates_the_floor_from_the_quietest_frames():
    """The floor is the mean band power of the ``fraction`` lowest-energy frames: with ten
    frames, one of them quiet, ``fraction`` 0.1 takes that frame; each band keeps what exceeds
    ``over`` times it and at least ``floor`` times it."""
    power = np.full((3, 10), 100.0)
    power[:, 4] = [1.0, 2.0, 4.0]
    out = preprocess.subtract_noise(power, {'fraction': 0.1, 'over': 2.0, 'floor': 0.5})
    np.testing.assert_allclose(out[:, 0], [98.0, 96.0, 92.0])
    np.testing.assert_allclose(out[:, 4], [0.5, 1.0, 2.0])
    for spec, problem in (({'fraction': 0, 'over': 1, 'floor': 0}, 'fraction'),
                          ({'fraction': 0.1, 'over': -1, 'floor': 0}, 'over'),
                          ({'fraction': 0.1, 'over': 1, 'floor': 2}, 'floor'),
                          ({'fraction': 0.1, 'over': 1}, 'exactly the fields'),
                          ([0.1, 1, 0], 'object')):
        assert problem in preprocess.noise_subtraction_problem(spec)
    assert preprocess.noise_subtraction_problem(NOISE_SUBTRACTION) == ''
