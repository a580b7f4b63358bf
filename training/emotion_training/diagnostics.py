"""Feature-collapse diagnostics.

Why: the original student project trained an ImageNet ResNet whose features collapsed to a
near-constant vector; accuracy sat at the majority class for a week before anyone looked.  The
across-batch variance of an encoder's output is a cheap, direct alarm: a healthy encoder maps
different inputs to different embeddings; a collapsed one does not.
"""
from __future__ import annotations

import logging
import sys
from typing import Optional

import numpy as np

log = logging.getLogger('emotion_training.diagnostics')

#: Threshold on the *relative* across-batch variance (variance / mean square): the fraction of a
#: feature's energy that differs between inputs.  Scale-free, so it works for any encoder; a
#: healthy encoder sits around 0.1-1, a collapsed one near 0.
DEFAULT_THRESHOLD = 1e-3


class FeatureCollapseError(RuntimeError):
    """Raised when --stop-on-collapse is set and an output's variance fell below the threshold."""


def feature_stats(features: np.ndarray) -> dict:
    """Across-batch statistics of features [N, D]: mean variance per dim, dead-dim fraction."""
    f = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    if f.shape[0] < 2:
        raise ValueError('need at least two samples to measure across-batch variance')
    var = f.var(axis=0)
    mean_sq = float((f ** 2).mean())
    return {'rel_var': float(var.mean() / (mean_sq + 1e-12)), 'mean_var': float(var.mean()),
            'min_var': float(var.min()), 'dead_fraction': float((var < 1e-8).mean()),
            'mean_abs': float(np.abs(f).mean()), 'n': int(f.shape[0]), 'dims': int(f.shape[1])}


def check_collapse(name: str, features: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
                   stop: bool = False, stream=None) -> dict:
    """Measure ``features``; warn loudly on stderr when the relative variance < threshold.

    Returns the stats with ``collapsed`` set; raises FeatureCollapseError when ``stop``.
    """
    stats = feature_stats(features)
    stats['name'] = name
    stats['threshold'] = threshold
    stats['collapsed'] = bool(stats['rel_var'] < threshold)
    if stats['collapsed']:
        msg = (f'!!! FEATURE COLLAPSE: {name} relative across-batch variance '
               f'{stats["rel_var"]:.3g} (absolute {stats["mean_var"]:.3g}) < '
               f'threshold {threshold:.3g} ({stats["dead_fraction"]:.0%} of {stats["dims"]} dims '
               f'constant). The encoder maps different inputs to (nearly) the same vector.')
        print(msg, file=stream or sys.stderr, flush=True)
        if stop:
            raise FeatureCollapseError(msg)
    return stats


def fusion_input(vision_emb: np.ndarray, vision_present: np.ndarray, voice_emb: np.ndarray,
                 voice_present: np.ndarray) -> np.ndarray:
    """The per-step vector the fusion LSTM sees (masked embeddings + presence flags)."""
    vp = np.asarray(vision_present, np.float32).reshape(-1, 1)
    ap = np.asarray(voice_present, np.float32).reshape(-1, 1)
    return np.concatenate([vision_emb * vp, vp, voice_emb * ap, ap], axis=1)


def format_stats(stats: dict) -> str:
    """One line for logs."""
    flag = 'COLLAPSED' if stats.get('collapsed') else 'ok'
    return (f'{stats["name"]}: rel_var={stats["rel_var"]:.3g} var={stats["mean_var"]:.3g} '
            f'min_var={stats["min_var"]:.3g} dead={stats["dead_fraction"]:.0%} '
            f'|x|={stats["mean_abs"]:.3g} [{flag}]')


def summarise_all(stats: list[dict]) -> Optional[str]:
    return '; '.join(format_stats(s) for s in stats) if stats else None
