"""Reading audio files with clear errors (used by loaders, training and emotion-eval)."""
from __future__ import annotations

import pathlib

import numpy as np


class AudioReadError(RuntimeError):
    """An audio file could not be read as audio."""


def read_mono(path: str | pathlib.Path) -> tuple[np.ndarray, int]:
    """Read a WAV/FLAC/OGG as float32 mono in [-1, 1] and its sample rate (channels averaged)."""
    import soundfile as sf  # noqa: PLC0415 - face-only training imports no audio library
    try:
        data, rate = sf.read(str(path), dtype='float32', always_2d=True)
    except Exception as exc:  # noqa: BLE001 - soundfile raises LibsndfileError, RuntimeError, ...
        raise AudioReadError(f'cannot read audio file {path}: {exc}') from exc
    if data.size == 0:
        raise AudioReadError(f'audio file {path} contains no samples')
    return data.mean(axis=1).astype(np.float32), int(rate)
