"""Speech windows for training: every file goes through ``voice_windows`` (the node's windowing
and silence gate) and ``preprocess.logmel`` (the node's features)."""
from __future__ import annotations

import sys
from typing import Sequence

import numpy as np
from tqdm import tqdm

from emotion_runtime.preprocess import logmel, normalise_logmel
from emotion_runtime.speaker_calibration import normalise_by_speaker
from emotion_runtime.voice_windows import utterance_windows

from .audio_io import read_mono
from .datasets.common import Sample


def raw_vocal_section(vocal: dict) -> dict:
    """The vocal section with normalisation switched off (for computing statistics)."""
    return dict(vocal, normalisation={'type': 'none'})


def file_windows(samples: Sequence[Sample], labels: Sequence[str], vocal: dict,
                 hop_s: float, desc: str = 'speech') -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Active windows of each file as log-mel: (x [W,1,M,T], y [W], file index [W]).

    ``hop_s`` may be denser than the node's hop for training (more, overlapping windows).
    The windows are normalised as ``vocal['normalisation']`` says (``normalise_windows``).
    """
    raw = raw_vocal_section(vocal)
    idx = {k: i for i, k in enumerate(labels)}
    xs, ys, fs = [], [], []
    rate = int(vocal['sample_rate'])
    for i, s in enumerate(tqdm(samples, desc=desc, file=sys.stderr, leave=False, mininterval=2)):
        audio, sr = read_mono(s.path)
        for w in utterance_windows(audio, sr, rate, float(vocal['window_seconds']), hop_s):
            xs.append(logmel(w, rate, raw)[None])
            ys.append(idx[s.label])
            fs.append(i)
    x = normalise_windows(np.stack(xs).astype(np.float32), [samples[i].speaker for i in fs],
                          vocal.get('normalisation', {'type': 'none'}))
    return x, np.array(ys, np.int64), np.array(fs, np.int64)


def normalise_windows(raw: np.ndarray, speakers: Sequence[str], norm: dict) -> np.ndarray:
    """Raw log-mel windows [W,1,M,T] -> normalised as the node does: 'speaker' calibrates to each
    speaker from all of its windows here (``speaker_calibration.normalise_by_speaker``), the
    other types go through ``preprocess.normalise_logmel`` window by window."""
    if norm.get('type') == 'speaker':
        return normalise_by_speaker(raw, speakers, norm)
    return normalise_logmel(raw, norm, window_axes=(1, 2, 3))
