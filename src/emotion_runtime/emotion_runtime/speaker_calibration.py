"""Per-speaker log-mel statistics: the 'speaker' normalisation of the vocal encoder's input.

Why: on EmoDB, held-out speakers differ from the training speakers more in voice (pitch range,
timbre, loudness habits) than the emotions differ from each other.  Normalising every mel band by
the speaker's own mean and spread (cepstral mean/variance normalisation per speaker, standard in
speech emotion recognition) removes much of that difference.  The statistics need no labels,
only the speaker's audio:

* training and ``emotion-eval speech`` compute them from all active windows of each speaker
  (offline calibration);
* the vocal node accumulates them online from the windows its VAD marks as speech, with a
  forgetting half-life, so after some seconds of speech it is calibrated to the person talking.

Until enough speech is seen the statistics are shrunk toward the training population's
(``prior_mean`` / ``prior_std`` in the manifest, weighted like ``prior_frames`` frames of
speech), so the first windows are normalised sensibly too.  Only numpy (no torch, no rclpy).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

__all__ = ['SpeakerCalibration', 'VoiceCalibration', 'speaker_section', 'normalise_by_speaker']


class SpeakerCalibration:
    """Running per-band sums of raw log-mel frames of one speaker, shrunk toward a prior.

    ``half_life_frames`` None = keep everything (offline); otherwise older frames count less,
    halving in weight every ``half_life_frames`` frames (online, for a robot whose interlocutor
    changes).
    """

    def __init__(self, prior_mean: Sequence[float], prior_std: Sequence[float],
                 prior_frames: float, half_life_frames: Optional[float] = None) -> None:
        self.prior_mean = np.asarray(prior_mean, np.float64).reshape(-1)
        self.prior_std = np.asarray(prior_std, np.float64).reshape(-1)
        if self.prior_mean.shape != self.prior_std.shape or self.prior_mean.size == 0:
            raise ValueError(f'speaker normalisation prior mean ({self.prior_mean.size} bands) '
                             f'and std ({self.prior_std.size} bands) must be non-empty and equal')
        if not np.all(self.prior_std > 0):
            raise ValueError('speaker normalisation prior std must be > 0 in every band')
        if prior_frames < 0:
            raise ValueError(f'prior_frames must be >= 0, got {prior_frames}')
        if half_life_frames is not None and half_life_frames <= 0:
            raise ValueError(f'half_life_frames must be > 0, got {half_life_frames}')
        self.prior_frames = float(prior_frames)
        self.half_life_frames = half_life_frames
        self.reset()

    @classmethod
    def from_manifest(cls, norm: Mapping[str, Any],
                      half_life_frames: Optional[float] = None) -> 'SpeakerCalibration':
        """A fresh calibration from a manifest ``normalisation`` section of type 'speaker'."""
        if norm.get('type') != 'speaker':
            raise ValueError(f"normalisation type is {norm.get('type')!r}, not 'speaker'")
        return cls(norm['mean'], norm['std'], float(norm['prior_frames']), half_life_frames)

    @property
    def bands(self) -> int:
        return int(self.prior_mean.size)

    def reset(self) -> None:
        """Forget the speaker (back to the population prior)."""
        self.frames = 0.0
        self._sum = np.zeros(self.bands)
        self._sumsq = np.zeros(self.bands)

    def update(self, mel: np.ndarray) -> None:
        """Add raw (unnormalised) log-mel frames: [M, T] or any [..., M, T] stack."""
        mel = np.asarray(mel, np.float64)
        if mel.ndim < 2 or mel.shape[-2] != self.bands:
            raise ValueError(f'expected log-mel [..., {self.bands}, T], got shape {mel.shape}')
        frames = np.moveaxis(mel, -2, 0).reshape(self.bands, -1)
        n = frames.shape[1]
        if n == 0:
            return
        if self.half_life_frames is not None:
            decay = 0.5 ** (n / self.half_life_frames)
            self.frames *= decay
            self._sum *= decay
            self._sumsq *= decay
        self.frames += n
        self._sum += frames.sum(axis=1)
        self._sumsq += (frames ** 2).sum(axis=1)

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean [M], std [M]) of the speaker, shrunk toward the prior by ``prior_frames``."""
        k = self.prior_frames
        total = self.frames + k
        if total <= 0:
            return self.prior_mean.astype(np.float32), self.prior_std.astype(np.float32)
        # Mean and variance are shrunk separately: pooling the second moments instead would add
        # the gap between the speaker's and the population's means to the variance.
        n = self.frames
        mean = (self._sum + k * self.prior_mean) / total
        own_var = (np.maximum(self._sumsq / n - (self._sum / n) ** 2, 0.0) if n > 0
                   else np.zeros(self.bands))
        std = np.sqrt(np.maximum((n * own_var + k * self.prior_std ** 2) / total, 1e-6))
        return mean.astype(np.float32), std.astype(np.float32)

    def normalise(self, mel: np.ndarray) -> np.ndarray:
        """(mel - mean) / std per band, for [M, T] or [..., M, T] raw log-mel."""
        mean, std = self.stats()
        return ((np.asarray(mel, np.float32) - mean[:, None]) / std[:, None]).astype(np.float32)


class VoiceCalibration(SpeakerCalibration):
    """The log-mel calibration of a bundle whose voice decision has a voiceprint member, carrying
    that member's own calibration (``voiceprint``: its features, counted per window) so that
    both follow the same speaker and are reset together."""

    def __init__(self, logmel: SpeakerCalibration, voiceprint: SpeakerCalibration) -> None:
        self.voiceprint = voiceprint
        super().__init__(logmel.prior_mean, logmel.prior_std, logmel.prior_frames,
                         logmel.half_life_frames)

    def reset(self) -> None:
        super().reset()
        self.voiceprint.reset()


def speaker_section(raw_windows: np.ndarray, prior_seconds: float, hop_length: int,
                    sample_rate: int) -> dict:
    """The manifest ``normalisation`` section for 'speaker': population per-band mean/std of the
    raw training windows [W, 1, M, T] (or [W, M, T]) and the prior weight in frames."""
    x = np.asarray(raw_windows, np.float64)
    frames = np.moveaxis(x, -2, 0).reshape(x.shape[-2], -1)
    frames_per_second = sample_rate / float(hop_length)
    return {'type': 'speaker',
            'mean': [round(float(v), 5) for v in frames.mean(axis=1)],
            'std': [round(float(v), 5) for v in frames.std(axis=1) + 1e-5],
            'prior_frames': round(float(prior_seconds) * frames_per_second, 1)}


def normalise_by_speaker(raw_windows: np.ndarray, speakers: Sequence[str],
                         norm: Mapping[str, Any]) -> np.ndarray:
    """Offline calibration: normalise raw windows [W, ..., M, T] with the statistics of all the
    windows of the same speaker (``speakers[i]`` is the speaker of window i; '' is a speaker
    too: files without speaker ids are calibrated together)."""
    x = np.asarray(raw_windows, np.float32)
    speakers = np.asarray(list(speakers))
    if len(speakers) != len(x):
        raise ValueError(f'{len(speakers)} speaker ids for {len(x)} windows')
    out = np.empty_like(x)
    for s in np.unique(speakers):
        m = speakers == s
        cal = SpeakerCalibration.from_manifest(norm)
        cal.update(x[m])
        out[m] = cal.normalise(x[m])
    return out
