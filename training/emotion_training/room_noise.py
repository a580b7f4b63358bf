"""Room noise for training and evaluating the voice model: what a robot's microphone hears when
nobody speaks (a white noise floor, a fan), added to clean speech at a set level.

Why: the corpora are studio recordings whose pauses are close to digital silence, while a robot's
microphone always has a noise floor.  The vocal encoder's log-mel (log of mel power + 1e-6) maps
that floor to values an encoder trained on clean speech never saw in a pause: white noise at
-60 dBFS takes such an encoder (bundle 0.7.0) from UAR 0.463 to 0.339 on RAVDESS actors 11-20 (no
calibration).  ``emotion-train vocal --noise-copies`` trains on noisy copies (the shipped bundle
does); ``emotion-eval speech --noise-dbfs`` measures a bundle in noise.  Numpy/scipy only.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.signal import lfilter

__all__ = ['NOISE_KINDS', 'fan_noise', 'room_noise', 'add_room_noise']

#: noise kinds ``room_noise`` makes
NOISE_KINDS = ('white', 'fan')


def fan_noise(n: int, rng: np.random.Generator, rate: int = 16000) -> np.ndarray:
    """Fan-like noise of unit RMS: mains hum and harmonics, a blade tone with a slow beat, brown
    noise and a little white noise."""
    t = np.arange(n) / rate
    hum = sum(a * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
              for f, a in ((50, 1.0), (100, 0.6), (150, 0.4), (200, 0.25), (250, 0.15)))
    blade = (1 + 0.3 * np.sin(2 * np.pi * 0.7 * t)) * np.sin(2 * np.pi * 24 * t) * 0.8
    brown = lfilter([1.0], [1.0, -0.995], rng.standard_normal(n))
    brown /= np.std(brown)
    white = rng.standard_normal(n)
    x = hum / np.std(hum) + blade + 1.0 * brown + 0.35 * white
    return (x / np.std(x)).astype(np.float32)


def room_noise(kind: str, n: int, dbfs: float, rng: np.random.Generator,
               rate: int = 16000) -> np.ndarray:
    """``n`` samples of ``kind`` noise (``NOISE_KINDS``) at an RMS of ``dbfs`` dB full scale
    (-60 dBFS = RMS 0.001)."""
    if kind == 'white':
        x = rng.standard_normal(n).astype(np.float32)
    elif kind == 'fan':
        x = fan_noise(n, rng, rate)
    else:
        raise ValueError(f'noise kind must be one of {NOISE_KINDS}, got {kind!r}')
    return (x * np.float32(10.0 ** (dbfs / 20.0))).astype(np.float32)


def add_room_noise(audio: np.ndarray, rate: int, kind: str, dbfs: float,
                   seed: Optional[int] = None) -> np.ndarray:
    """``audio`` (mono float) with ``kind`` noise at ``dbfs`` added, clipped to [-1, 1]."""
    x = np.asarray(audio, np.float32).reshape(-1)
    noise = room_noise(kind, x.size, dbfs, np.random.default_rng(seed), rate)
    return np.clip(x + noise, -1.0, 1.0).astype(np.float32)
