"""How a stream or file of speech is cut into encoder windows and how window outputs are combined.

One definition for the vocal node, for ``emotion-eval speech`` and for training, so an offline
number means what the robot does: windows of ``window_s`` every ``hop_s`` (the last window is
end-aligned so the tail is covered; audio shorter than a window is zero-padded to one window);
windows much quieter than the loudest one (silence, e.g. the zero padding of EmoDB clips) are
dropped; the utterance's logits are the mean of its kept windows' logits.
Numpy only (no torch, no rclpy).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from .preprocess import resample

if TYPE_CHECKING:  # pragma: no cover
    from .model_bundle import ModelBundle

#: a window is "active" when its RMS is at least this fraction of the loudest window's (-20 dB)
ACTIVE_RELATIVE_RMS = 0.1
#: ... and above this absolute RMS (digital silence / very faint noise is never active)
ACTIVE_ABSOLUTE_RMS = 1e-4


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Start indices of the windows over ``n_samples`` (see module docstring)."""
    if window <= 0 or hop <= 0:
        raise ValueError(f'window and hop must be positive (got {window}, {hop})')
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts


def windows(samples: np.ndarray, rate: int, window_s: float, hop_s: float) -> list[np.ndarray]:
    """Cut mono ``samples`` at ``rate`` into float32 windows of ``window_s`` every ``hop_s``."""
    x = np.asarray(samples, np.float32).reshape(-1)
    n, h = int(round(window_s * rate)), int(round(hop_s * rate))
    if x.size < n:
        x = np.pad(x, (0, n - x.size))
    return [x[s:s + n] for s in window_starts(x.size, n, h)]


def rms(window: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(window, dtype=np.float64))))


def active_mask(wins: list[np.ndarray], relative: float = ACTIVE_RELATIVE_RMS,
                absolute: float = ACTIVE_ABSOLUTE_RMS) -> np.ndarray:
    """Which windows carry speech energy; if none passes, the loudest one is kept."""
    levels = np.array([rms(w) for w in wins])
    if levels.size == 0:
        return np.zeros(0, bool)
    keep = (levels >= relative * levels.max()) & (levels > absolute)
    if not keep.any():
        keep[int(levels.argmax())] = True
    return keep


def aggregate(window_logits: np.ndarray) -> np.ndarray:
    """Utterance logits = mean of window logits [W, C] -> [C]."""
    window_logits = np.asarray(window_logits, np.float32)
    if window_logits.ndim != 2 or window_logits.shape[0] == 0:
        raise ValueError(f'need window logits [W>0, C], got shape {window_logits.shape}')
    return window_logits.mean(axis=0)


def utterance_windows(samples: np.ndarray, rate: int, target_rate: int, window_s: float,
                      hop_s: float) -> list[np.ndarray]:
    """Resample to ``target_rate``, cut into windows, keep the active ones."""
    x = resample(np.asarray(samples, np.float32).reshape(-1), int(rate), int(target_rate))
    wins = windows(x, int(target_rate), window_s, hop_s)
    keep = active_mask(wins)
    return [w for w, k in zip(wins, keep) if k]


def utterance_logits(bundle: 'ModelBundle', samples: np.ndarray, rate: int,
                     return_embeddings: bool = False
                     ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """One prediction per utterance: mean logits [C] of its active windows (and mean embedding)."""
    wins = utterance_windows(samples, rate, bundle.sample_rate, bundle.window_seconds,
                             bundle.hop_seconds)
    emb, logits = bundle.encode_voice_windows(wins, bundle.sample_rate)
    if return_embeddings:
        return aggregate(logits), emb.mean(axis=0)
    return aggregate(logits)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=axis, keepdims=True))
    return (z / z.sum(axis=axis, keepdims=True)).astype(np.float32)


def stream_ready(buffer_len: int, rate: int, window_s: float, hop_s: float,
                 last_end: Optional[int] = None) -> bool:
    """For a streaming node: is a new window due (first full window, then every hop)?
    Window and hop are at least one sample, so a caller's loop always advances."""
    n, h = max(1, int(round(window_s * rate))), max(1, int(round(hop_s * rate)))
    if last_end is None:
        return buffer_len >= n
    return buffer_len - last_end >= h


class SpanPool:
    """Running decision over the current voiced span of a stream (the stream's counterpart of
    ``aggregate``): each speech window's embedding and logits are replaced by the mean over the
    speech windows of its span so far, so a voice feature says what the utterance says, not
    what its last second says.

    A span starts at a speech window and goes on while speech windows follow each other; it ends
    when the next speech window starts more than ``hop_s + hangover_s`` after the previous one
    (the VAD heard a pause longer than the hangover), or when ``reset`` is called (stream
    restart).  ``max_s`` bounds the pool: windows that start more than ``max_s`` before the
    current one drop out (a long monologue still follows a change of mood).  Windows without
    speech pass unchanged and do not end the span by themselves.  Numpy only.
    """

    def __init__(self, hop_s: float, hangover_s: float = 0.5, max_s: float = 10.0) -> None:
        if hop_s <= 0 or hangover_s < 0 or max_s <= 0:
            raise ValueError(f'span pooling needs hop > 0, hangover >= 0 and max > 0 (got '
                             f'{hop_s}, {hangover_s}, {max_s})')
        self.hop_s, self.hangover_s, self.max_s = float(hop_s), float(hangover_s), float(max_s)
        self.spans = 0                  # spans started since construction
        self.reset()

    def reset(self) -> None:
        """Close the current span (the next speech window starts a new one)."""
        self._stamps: list[float] = []
        self._emb: list[np.ndarray] = []
        self._logits: list[np.ndarray] = []

    @property
    def windows(self) -> int:
        """Speech windows in the current span's pool."""
        return len(self._stamps)

    def add(self, stamp: float, speech: bool, embedding: np.ndarray, logits: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
        """One window in stream order -> the (embedding, logits) to emit for it."""
        if not speech:
            return embedding, logits
        # small tolerance: stamps of consecutive windows are hop apart up to float rounding
        if self._stamps and stamp - self._stamps[-1] > self.hop_s + self.hangover_s + 1e-6:
            self.reset()
        if not self._stamps:
            self.spans += 1
        self._stamps.append(float(stamp))
        self._emb.append(np.asarray(embedding, np.float32))
        self._logits.append(np.asarray(logits, np.float32))
        while self._stamps[0] < stamp - self.max_s - 1e-6:
            del self._stamps[0], self._emb[0], self._logits[0]
        return (np.mean(self._emb, axis=0).astype(np.float32),
                np.mean(self._logits, axis=0).astype(np.float32))
