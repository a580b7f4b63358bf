"""Energy-based voice-activity detection with an adaptive noise floor and a hangover.

Why energy and not a model: it costs microseconds per frame, has no weights to ship and is good
enough to tell the fusion node "this voice window holds speech" on a head-mounted microphone.
The noise floor is a low percentile of recent frame levels (so it follows a fan switching on,
yet ignores the speech itself); a frame is speech when it is ``margin_db`` above that floor AND
above ``min_level_db``; ``hangover`` keeps short pauses between words inside the speech segment.
"""
from __future__ import annotations

from collections import deque

import numpy as np

__all__ = ['EnergyVad']


class EnergyVad:
    """Streaming VAD: feed samples in any chunk size, get one speech flag per completed frame."""

    def __init__(self, sample_rate: int, frame_seconds: float = 0.02, margin_db: float = 10.0,
                 min_level_db: float = -50.0, hangover_seconds: float = 0.3,
                 noise_window_seconds: float = 5.0, noise_percentile: float = 10.0) -> None:
        if sample_rate <= 0:
            raise ValueError(f'sample_rate must be > 0, got {sample_rate}')
        if not 0.005 <= frame_seconds <= 0.1:
            raise ValueError(f'frame_seconds must be in [0.005, 0.1], got {frame_seconds}')
        if margin_db < 0 or hangover_seconds < 0 or noise_window_seconds <= 0:
            raise ValueError('margin_db and hangover_seconds must be >= 0, '
                             'noise_window_seconds > 0')
        if not 0 <= noise_percentile <= 50:
            raise ValueError(f'noise_percentile must be in [0, 50], got {noise_percentile}')
        self.sample_rate = int(sample_rate)
        self.frame = max(1, int(round(frame_seconds * sample_rate)))
        frame_s = self.frame / self.sample_rate
        self.margin_db, self.min_level_db = float(margin_db), float(min_level_db)
        self.hangover_frames = int(round(hangover_seconds / frame_s))
        self.noise_percentile = float(noise_percentile)
        self._levels: deque = deque(maxlen=max(2, int(round(noise_window_seconds / frame_s))))
        self._rest = np.zeros(0, np.float32)
        self._hang = 0
        self.noise_floor_db = float('nan')
        self.last_level_db = float('nan')

    def reset(self) -> None:
        """Forget the partial frame and the hangover (after a stream reset); keep the floor."""
        self._rest = np.zeros(0, np.float32)
        self._hang = 0

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Flags (bool, one per frame of ``self.frame`` samples) for the frames completed now."""
        x = np.concatenate([self._rest, np.asarray(samples, np.float32).reshape(-1)])
        n = x.size // self.frame
        self._rest = x[n * self.frame:].copy()
        if n == 0:
            return np.zeros(0, bool)
        frames = x[:n * self.frame].reshape(n, self.frame)
        levels = 10.0 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
        flags = np.zeros(n, bool)
        for i, level in enumerate(levels):
            self._levels.append(level)
            floor = float(np.percentile(self._levels, self.noise_percentile))
            self.noise_floor_db, self.last_level_db = floor, float(level)
            if level > self.min_level_db and level > floor + self.margin_db:
                self._hang = self.hangover_frames
                flags[i] = True
            elif self._hang > 0:
                self._hang -= 1
                flags[i] = True
        return flags
