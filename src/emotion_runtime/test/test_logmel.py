"""The vocal log-mel is plain numpy (no JIT on a node's path) and equals librosa's.

``preprocess.logmel`` used ``librosa.feature.melspectrogram``, whose numba code compiled at the
first call (48 s on a fresh venv) inside a node.  It is now numpy/scipy; these tests check that no
node module pulls in librosa or numba, and that the features, and the shipped bundle's vocal
encoder outputs on them, are librosa's (which stays installed for the tests) on synthetic signals
and on real EmoDB / RAVDESS clips ($EMOTION_DATA, else ``../shared/data`` beside the repository;
skipped where absent).
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
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, PYTHONWARNINGS='ignore'))
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'LOADED []' in run.stdout, run.stdout + run.stderr


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
