"""PCM bytes of emotion_msgs/AudioChunk <-> float32 sample arrays.

Why one place: the microphone node encodes and the vocal node decodes; a mismatch in scale (32768
vs 32767) or byte order would shift every loudness feature the vocal model sees.
"""
from __future__ import annotations

import numpy as np

__all__ = ['AudioFormatError', 'S16LE', 'F32LE', 'bytes_per_sample', 'encode_pcm', 'decode_pcm',
           'to_mono', 'check_finite']

S16LE = 'S16LE'
F32LE = 'F32LE'
_BYTES = {S16LE: 2, F32LE: 4}


class AudioFormatError(ValueError):
    """Audio data that cannot be decoded (unknown encoding, ragged length, NaN/inf samples)."""


def bytes_per_sample(encoding: str) -> int:
    try:
        return _BYTES[encoding]
    except KeyError:
        raise AudioFormatError(f'unknown audio encoding {encoding!r}; expected one of '
                               f'{sorted(_BYTES)}') from None


def encode_pcm(samples: np.ndarray, encoding: str) -> bytes:
    """float32 [frames, channels] (or [frames]) in [-1, 1] -> interleaved little-endian bytes."""
    x = np.asarray(samples, np.float32)
    if x.ndim == 1:
        x = x[:, None]
    check_finite(x)
    if encoding == S16LE:
        return np.clip(np.round(x * 32768.0), -32768, 32767).astype('<i2').tobytes()
    if encoding == F32LE:
        return x.astype('<f4').tobytes()
    bytes_per_sample(encoding)
    raise AssertionError('unreachable')


def decode_pcm(data: bytes, encoding: str, channels: int) -> np.ndarray:
    """Interleaved bytes -> float32 [frames, channels]; full scale 32768 for S16LE."""
    if channels <= 0:
        raise AudioFormatError(f'channel count must be >= 1, got {channels}')
    width = bytes_per_sample(encoding)
    raw = bytes(data)
    if len(raw) % (width * channels):
        raise AudioFormatError(f'{len(raw)} bytes is not a whole number of {channels}-channel '
                               f'{encoding} frames ({width * channels} B per frame)')
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
                               f'chunk rejected')
