"""PCM bytes of emotion_msgs/AudioChunk <-> float32 sample arrays.

Why one place: the microphone node encodes and the vocal node decodes; a mismatch in scale (32768
vs 32767) or byte order would shift every loudness feature the vocal model sees.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ['AudioFormatError', 'S16LE', 'F32LE', 'MIN_SAMPLE_RATE', 'MAX_SAMPLE_RATE',
           'MAX_CHANNELS', 'bytes_per_sample', 'encode_pcm', 'decode_pcm', 'to_mono',
           'check_finite', 'check_sample_rate', 'check_stamp', 'clean_non_finite']

S16LE = 'S16LE'
F32LE = 'F32LE'
_BYTES = {S16LE: 2, F32LE: 4}

#: Sample rates a stream may claim [Hz].  Outside them a chunk is refused: at 1 Hz a window hop
#: rounds to 0 samples, at 4 GHz filling a 0.5 s gap would allocate gigabytes.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000
#: Most interleaved channels a chunk may carry (AudioChunk.channels is a uint8).
MAX_CHANNELS = 32


class AudioFormatError(ValueError):
    """Audio that is refused (unknown encoding, ragged length, NaN/inf samples, a sample rate or
    channel count out of bounds, a non-finite stamp).  ``reason`` is a stable key for counting
    (``sample_rate``, ``channels``, ``encoding``, ``data_length``, ``non_finite_samples``,
    ``stamp``)."""

    def __init__(self, message: str, reason: str = 'invalid') -> None:
        super().__init__(message)
        self.reason = reason


def bytes_per_sample(encoding: str) -> int:
    try:
        return _BYTES[encoding]
    except (KeyError, TypeError):
        raise AudioFormatError(f'unknown audio encoding {encoding!r}; expected one of '
                               f'{sorted(_BYTES)}', 'encoding') from None


def check_sample_rate(sample_rate) -> int:
    """The rate as an int; AudioFormatError (reason ``sample_rate``) outside
    [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE] or when it is not a whole number."""
    try:
        ok = float(sample_rate) == int(sample_rate)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or not MIN_SAMPLE_RATE <= int(sample_rate) <= MAX_SAMPLE_RATE:
        raise AudioFormatError(f'sample_rate {sample_rate!r} is outside [{MIN_SAMPLE_RATE}, '
                               f'{MAX_SAMPLE_RATE}] Hz', 'sample_rate')
    return int(sample_rate)


def check_stamp(stamp) -> float:
    """The stamp as a float; AudioFormatError (reason ``stamp``) when it is not finite."""
    try:
        t = float(stamp)
    except (TypeError, ValueError, OverflowError):
        t = float('nan')
    if not math.isfinite(t):
        raise AudioFormatError(f'chunk stamp {stamp!r} is not a finite time', 'stamp')
    return t


def encode_pcm(samples: np.ndarray, encoding: str) -> bytes:
    """float32 [frames, channels] (or [frames]) in [-1, 1] -> interleaved little-endian bytes."""
    x = np.asarray(samples, np.float32)
    if x.ndim == 1:
        x = x[:, None]
    check_finite(x)
    if encoding == S16LE:
        return np.clip(np.round(np.clip(x, -1.0, 1.0) * 32768.0), -32768, 32767).astype('<i2').tobytes()
    if encoding == F32LE:
        return x.astype('<f4').tobytes()
    bytes_per_sample(encoding)
    raise AssertionError('unreachable')


def decode_pcm(data: bytes, encoding: str, channels: int) -> np.ndarray:
    """Interleaved bytes -> float32 [frames, channels]; full scale 32768 for S16LE."""
    if not isinstance(channels, (int, np.integer)) or not 1 <= channels <= MAX_CHANNELS:
        raise AudioFormatError(f'channel count must be in [1, {MAX_CHANNELS}], got {channels!r}',
                               'channels')
    width = bytes_per_sample(encoding)
    raw = bytes(data)
    if len(raw) % (width * channels):
        raise AudioFormatError(f'{len(raw)} bytes is not a whole number of {channels}-channel '
                               f'{encoding} frames ({width * channels} B per frame)',
                               'data_length')
    if encoding == S16LE:
        x = np.frombuffer(raw, '<i2').astype(np.float32) / 32768.0
    else:
        x = np.frombuffer(raw, '<f4').astype(np.float32)
    return x.reshape(-1, channels)


def to_mono(frames: np.ndarray) -> np.ndarray:
    """Average the channels of [frames, channels] (a mono stream is returned as 1-D)."""
    x = np.asarray(frames, np.float32)
    return x.reshape(-1) if x.ndim == 1 else x.mean(axis=1, dtype=np.float32)


def check_finite(samples: np.ndarray) -> None:
    """Raise AudioFormatError when any sample is NaN or infinite (a broken driver or file)."""
    x = np.asarray(samples)
    if x.size and not np.isfinite(x).all():
        bad = int(x.size - np.isfinite(x).sum())
        raise AudioFormatError(f'{bad} of {x.size} audio samples are NaN or infinite; '
                               f'chunk rejected', 'non_finite_samples')


def clean_non_finite(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """(samples with every NaN/inf replaced by 0, how many were replaced); the input is not
    modified (a file with one bad sample keeps playing instead of killing its reader)."""
    x = np.asarray(samples)
    bad = ~np.isfinite(x)
    n = int(bad.sum())
    if not n:
        return x, 0
    x = x.copy()
    x[bad] = 0
    return x, n
