"""Input preprocessing shared by the ROS nodes and by offline training.

Why one module: a model only works when the pixels and samples it sees at run time are
transformed exactly as during training.  Training (``emotion_training``) imports these same
functions, and every parameter comes from the bundle's ``manifest.json`` so a bundle carries its
own preprocessing recipe.  Only numpy, OpenCV and scipy are used (no torch, no rclpy, and no
librosa/numba: the log-mel is plain numpy so a node's first window needs no JIT compilation; it
reproduces ``librosa.feature.melspectrogram`` to float rounding, tested in ``test_logmel.py``).
"""
from __future__ import annotations

from functools import lru_cache
from math import gcd
from typing import Any, Mapping, Optional

import cv2
import numpy as np

from .speaker_calibration import SpeakerCalibration

__all__ = ['DEFAULT_LOG_FLOOR', 'face_to_input', 'faces_to_batch', 'log_floor', 'logmel',
           'noise_subtraction_problem', 'normalise_logmel', 'resample', 'subtract_noise',
           'to_grey']


def to_grey(crop: np.ndarray) -> np.ndarray:
    """Return a uint8 HxW grey image from a grey (HxW, HxWx1), BGR (HxWx3) or BGRA crop."""
    if not isinstance(crop, np.ndarray):
        raise ValueError(f'face crop must be a numpy array, got {type(crop).__name__}')
    if crop.ndim == 3 and crop.shape[2] == 1:
        crop = crop[:, :, 0]
    if crop.ndim == 3 and crop.shape[2] == 3:
        crop = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_BGR2GRAY)
    elif crop.ndim == 3 and crop.shape[2] == 4:
        crop = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_BGRA2GRAY)
    if crop.ndim != 2:
        raise ValueError(f'face crop must be HxW grey or HxWx3 BGR, got shape {crop.shape}')
    if crop.shape[0] < 2 or crop.shape[1] < 2:
        raise ValueError(f'face crop too small: {crop.shape}')
    if crop.dtype != np.uint8:
        # Float crops are taken to be in [0, 1] when their maximum says so, else in [0, 255].
        arr = crop.astype(np.float32)
        if arr.size and float(np.nanmax(arr)) <= 1.0:
            arr = arr * 255.0
        crop = np.clip(arr, 0, 255).astype(np.uint8)
    return crop


def face_to_input(crop: np.ndarray, vision: Mapping[str, Any]) -> np.ndarray:
    """Turn one face crop of any size into the vision encoder's float32 [1, H, W] input.

    Steps (identical in training and on the robot): grey conversion, resize to the manifest's
    ``input_size`` (INTER_AREA when shrinking to avoid aliasing, INTER_LINEAR when enlarging),
    scaling to [0, 1] and ``(x - mean) / std`` with the manifest's scalar mean and std.
    """
    size = int(vision['input_size'])
    grey = to_grey(crop)
    if grey.shape != (size, size):
        shrink = grey.shape[0] > size or grey.shape[1] > size
        grey = cv2.resize(grey, (size, size),
                          interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    mean = float(np.asarray(vision.get('mean', 0.5)).reshape(-1)[0])
    std = float(np.asarray(vision.get('std', 0.25)).reshape(-1)[0])
    x = grey.astype(np.float32) / 255.0
    x = (x - mean) / std
    return x[None, :, :].astype(np.float32)


def faces_to_batch(crops: list[np.ndarray], vision: Mapping[str, Any]) -> np.ndarray:
    """Stack several crops into one float32 [N, 1, H, W] batch (one session call on the robot)."""
    size = int(vision['input_size'])
    if len(crops) == 0:
        return np.zeros((0, 1, size, size), np.float32)
    return np.stack([face_to_input(c, vision) for c in crops]).astype(np.float32)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample mono audio with a polyphase filter (deterministic; same code in training and nodes)."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f'expected mono 1-D samples, got shape {samples.shape}')
    from_rate, to_rate = int(from_rate), int(to_rate)
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f'sample rates must be positive, got {from_rate} -> {to_rate}')
    if from_rate == to_rate or samples.size == 0:
        return samples.copy()
    # scipy.signal takes ~1.7 s to import on a cold start: keep it off a node's start-up (before
    # its first /diagnostics); model_loading.warm_up pays it during configure.
    from scipy.signal import resample_poly  # noqa: PLC0415 - heavy import, see above
    g = gcd(from_rate, to_rate)
    return resample_poly(samples, to_rate // g, from_rate // g).astype(np.float32)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's auditory-toolbox mel scale (librosa's ``htk=False``): linear below 1 kHz
    (200/3 Hz per mel), logarithmic above (27 mels per factor 6.4)."""
    hz = np.asarray(hz, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz,
                    min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep,
                    hz / f_sp)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of ``_hz_to_mel``."""
    mel = np.asarray(mel, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)),
                    f_sp * mel)


def mel_band_edges(fmin: float, fmax: float, n_mels: int) -> np.ndarray:
    """The ``n_mels + 2`` band edges [Hz] of ``mel_filterbank``, equally spaced on the Slaney
    mel scale from ``fmin`` to ``fmax``; band i spans edges i..i+2 and peaks at edge i+1."""
    return _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), int(n_mels) + 2))


@lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float,
                   fmax: float) -> np.ndarray:
    """Slaney-normalised triangular mel filters float64 [n_mels, 1 + n_fft // 2] (read-only).

    The same filters as ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)`` with its defaults
    ``htk=False, norm='slaney'``: band edges equally spaced on the Slaney mel scale, triangles
    over the rFFT bin frequencies, each scaled by 2 / (upper edge - lower edge) in Hz so every
    filter has the same area.  Cached per parameter set.
    """
    fft_hz = np.fft.rfftfreq(int(n_fft), d=1.0 / int(sample_rate))
    edges = mel_band_edges(fmin, fmax, n_mels)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=16)
def _stft_window(win_length: int, n_fft: int) -> np.ndarray:
    """Periodic Hann window of ``win_length`` zero-padded to ``n_fft`` in the centre (as librosa's
    ``get_window('hann', win_length, fftbins=True)`` + ``pad_center``), float64, read-only."""
    if not 0 < win_length <= n_fft:
        raise ValueError(f'win_length must be in 1..n_fft={n_fft}, got {win_length}')
    n = np.arange(win_length, dtype=np.float64)
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    window = np.zeros(n_fft, np.float64)
    left = (n_fft - win_length) // 2
    window[left:left + win_length] = hann
    window.setflags(write=False)
    return window


def mel_power(samples: np.ndarray, config: Mapping[str, Any]) -> np.ndarray:
    """Mel power spectrogram float64 [n_mels, 1 + len // hop] of mono samples at
    ``config['sample_rate']`` (``n_fft``, ``win_length``, ``hop_length``, ``n_mels``, ``fmin``,
    ``fmax`` as in a manifest's vocal section): the vocal encoder's before its log, and the
    voiceprint member's (``voiceprint``)."""
    return _mel_power(samples, config)


def _mel_power(samples: np.ndarray, vocal: Mapping[str, Any]) -> np.ndarray:
    """Mel power spectrogram float64 [n_mels, 1 + len // hop] of mono samples.

    What ``librosa.feature.melspectrogram(..., power=2.0, center=True, pad_mode='constant')``
    computes, in plain numpy/scipy (no numba JIT at the first call): frames centred on multiples
    of ``hop_length`` (the signal zero-padded by n_fft // 2 on both sides), the windowed rFFT of
    each frame, |X|^2, then the Slaney mel filterbank.
    """
    n_fft, hop = int(vocal['n_fft']), int(vocal['hop_length'])
    window = _stft_window(int(vocal['win_length']), n_fft)
    basis = mel_filterbank(int(vocal['sample_rate']), n_fft, int(vocal['n_mels']),
                           float(vocal['fmin']), float(vocal['fmax']))
    padded = np.pad(np.asarray(samples, np.float64), n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    # scipy.fft takes ~0.5 s to import on a cold start: kept off a node's start-up like
    # scipy.signal above (model_loading.warm_up computes a log-mel during configure).
    from scipy import fft as sp_fft  # noqa: PLC0415 - heavy import, see above
    spec = sp_fft.rfft(frames * window, axis=-1)
    power = spec.real ** 2 + spec.imag ** 2
    return basis @ power.T


#: mel power added before the log when a manifest's vocal section names no ``log_floor``
DEFAULT_LOG_FLOOR = 1e-6


def log_floor(vocal: Mapping[str, Any]) -> float:
    """The mel power added before the log (``vocal['log_floor']``, else ``DEFAULT_LOG_FLOOR``)."""
    return float(vocal.get('log_floor', DEFAULT_LOG_FLOOR))


#: keys of a manifest's ``vocal.noise_subtraction`` and their bounds (``subtract_noise``)
NOISE_SUBTRACTION_KEYS = {'fraction': (0.0, 1.0), 'over': (0.0, 10.0), 'floor': (0.0, 1.0)}


def noise_subtraction_problem(spec: Any) -> str:
    """What is wrong with a ``vocal.noise_subtraction`` section ('' when it is usable): an object
    with exactly ``fraction`` in (0, 1], ``over`` in [0, 10] and ``floor`` in [0, 1]."""
    if not isinstance(spec, Mapping):
        return f'must be an object, got {spec!r}'
    if set(spec) != set(NOISE_SUBTRACTION_KEYS):
        return f'must have exactly the fields {sorted(NOISE_SUBTRACTION_KEYS)}, got {sorted(spec)}'
    for key, (lo, hi) in NOISE_SUBTRACTION_KEYS.items():
        v = spec[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi or (
                key == 'fraction' and v == 0):
            opening = '(' if key == 'fraction' else '['
            return f'field {key} must be a number in {opening}{lo:g}, {hi:g}], got {v!r}'
    return ''


def subtract_noise(power: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """Mel power [n_mels, frames] of one window with its noise floor taken out.

    The floor is estimated from the window itself, so the node and the evaluator treat every
    window alike, whatever came before it: the mean power per band of its
    ``fraction`` lowest-energy frames (summed over bands).  Each band keeps what exceeds ``over``
    times that floor, and at least ``floor`` times the floor: a steady noise (a fan, a
    microphone's hiss) then reads as the near-silence of the studio pauses the encoders learnt
    on, while speech far above it is unchanged.
    """
    power = np.asarray(power, np.float64)
    if power.ndim != 2 or power.shape[1] == 0:
        return power
    energy = power.sum(axis=0)
    k = max(1, int(round(float(spec['fraction']) * energy.size)))
    noise = power[:, np.argsort(energy, kind='stable')[:k]].mean(axis=1, keepdims=True)
    return np.maximum(power - float(spec['over']) * noise, float(spec['floor']) * noise)


def logmel(samples: np.ndarray, sample_rate: int, vocal: Mapping[str, Any]) -> np.ndarray:
    """Log-mel spectrogram float32 [n_mels, frames] of a mono window, as the vocal encoder expects.

    Audio at another rate is resampled to the manifest's ``sample_rate`` first.  Log is natural
    log of power + ``log_floor`` (the manifest's, else ``DEFAULT_LOG_FLOOR``: digital silence
    stays finite, and a higher floor hides a quiet room's noise), after ``subtract_noise`` when
    the manifest has a ``noise_subtraction`` section.  ``normalisation`` in the manifest
    selects what follows: ``{"type": "global", "mean": m, "std": s}`` (statistics of the training
    set; keeps loudness, which carries arousal), ``{"type": "per_window"}`` (zero mean, unit
    variance per window; gain-invariant), ``{"type": "speaker", ...}`` (per band by the speaker's
    statistics, see ``speaker_calibration``; here, without a calibration, the training
    population's) or ``{"type": "none"}``.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2 and 1 in samples.shape:
        samples = samples.reshape(-1)
    if samples.ndim != 1:
        raise ValueError(f'expected mono 1-D samples, got shape {samples.shape}')
    rate = int(vocal['sample_rate'])
    if int(sample_rate) != rate:
        samples = resample(samples, int(sample_rate), rate)
    samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
    power = _mel_power(samples, vocal)
    if vocal.get('noise_subtraction'):
        power = subtract_noise(power, vocal['noise_subtraction'])
    mel = np.log(power + log_floor(vocal)).astype(np.float32)
    return normalise_logmel(mel, vocal.get('normalisation', {'type': 'none'}))


def normalise_logmel(mel: np.ndarray, norm: Mapping[str, Any] | str,
                     window_axes: Optional[tuple[int, ...]] = None,
                     calibration: Optional[SpeakerCalibration] = None) -> np.ndarray:
    """Apply a manifest ``normalisation`` section to log-mel values (see ``logmel``).

    ``window_axes``: the axes that make up one window when ``mel`` holds several (training
    normalises a whole [W,1,M,T] stack at once with ``(1, 2, 3)``); None = ``mel`` is one window.
    'speaker' normalises each band (axis -2) by the speaker's statistics from ``calibration``,
    or by the training population's (the manifest prior) when there is none.
    """
    if isinstance(norm, str):
        norm = {'type': norm}
    kind = norm.get('type', 'none')
    if kind == 'global':
        mel = (mel - float(norm['mean'])) / float(norm['std'])
    elif kind == 'per_window':
        m = mel.mean(axis=window_axes, keepdims=True)
        mel = (mel - m) / (mel.std(axis=window_axes, keepdims=True) + 1e-5)
    elif kind == 'speaker':
        mel = (calibration or SpeakerCalibration.from_manifest(norm)).normalise(mel)
    elif kind != 'none':
        raise ValueError(f'unknown vocal normalisation type {kind!r}')
    return mel.astype(np.float32)


def window_samples(vocal: Mapping[str, Any]) -> int:
    """Number of samples in one vocal window at the manifest rate."""
    return int(round(float(vocal['window_seconds']) * int(vocal['sample_rate'])))


def logmel_frames(vocal: Mapping[str, Any]) -> int:
    """Frames of one window's log-mel (centred STFT: 1 + samples // hop)."""
    return 1 + window_samples(vocal) // int(vocal['hop_length'])
