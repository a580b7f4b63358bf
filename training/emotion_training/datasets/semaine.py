"""SEMAINE (McKeown et al. 2012) sessions with continuous valence/arousal FeelTrace ratings.

Layout read here (that of the SEMAINE database's per-session download, ``Sessions/<id>/``)::

    ROOT/Sessions/<session id>/
        *User*.avi | *.avi | *.mp4     video of the user (first matching; "User" preferred)
        *User*.wav | *.wav             audio of the user
        <rater>S<n>TUDV*.txt           FeelTrace valence trace of the Target User (D V)
        <rater>S<n>TUDA*.txt           FeelTrace arousal trace of the Target User (D A)

Trace files hold two whitespace-separated columns ``time_seconds value`` (value in [-1, 1]); all
raters of a session are averaged on a common time base.  ``ROOT`` may also directly contain the
session folders.  Categorical labels for classification come from the nearest point of the
valence/arousal table (``labels.VALENCE_AROUSAL``); the continuous traces are kept for regression.
"""
from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import Optional, Sequence

import numpy as np

from ..labels import VALENCE_AROUSAL
from .common import Sample

_TRACE = re.compile(r'TUD([VA])', re.IGNORECASE)


@dataclasses.dataclass
class SemaineSession:
    """One session: media paths and rater-averaged traces (time [T], valence [T], arousal [T])."""

    session_id: str
    video: Optional[pathlib.Path]
    audio: Optional[pathlib.Path]
    time: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray

    def va_at(self, t: float | np.ndarray) -> np.ndarray:
        """Interpolated [valence, arousal] at time(s) t in seconds."""
        return np.stack([np.interp(t, self.time, self.valence),
                         np.interp(t, self.time, self.arousal)], axis=-1)

    def label_at(self, t: float, labels: Sequence[str]) -> str:
        """Nearest label of the valence/arousal table at time t."""
        va = self.va_at(t)
        pts = np.array([VALENCE_AROUSAL[k] for k in labels])
        return labels[int(np.argmin(((pts - va) ** 2).sum(1)))]


def _read_trace(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        data = np.loadtxt(path, ndmin=2)
    except ValueError as exc:
        raise ValueError(f'SEMAINE trace {path} is not two numeric columns: {exc}') from exc
    if data.shape[1] < 2:
        raise ValueError(f'SEMAINE trace {path} needs two columns (time value)')
    return data[:, 0], data[:, 1]


def _average(paths: list[pathlib.Path], grid: np.ndarray) -> np.ndarray:
    vals = []
    for p in paths:
        t, v = _read_trace(p)
        vals.append(np.interp(grid, t, v))
    return np.mean(vals, axis=0)


def _pick(files: list[pathlib.Path], exts: tuple[str, ...]) -> Optional[pathlib.Path]:
    cands = [f for f in files if f.suffix.lower() in exts]
    user = [f for f in cands if 'user' in f.name.lower()]
    return (user or cands or [None])[0]


def _sessions_dir(root: str | pathlib.Path) -> pathlib.Path:
    root = pathlib.Path(root)
    return root / 'Sessions' if (root / 'Sessions').is_dir() else root


def is_semaine_root(root: str | pathlib.Path) -> bool:
    """True when ``root`` (or its ``Sessions/``) holds session folders with FeelTrace traces."""
    base = _sessions_dir(root)
    return base.is_dir() and any(_TRACE.search(f.name) and f.suffix.lower() == '.txt'
                                 for f in base.glob('*/*'))


def load_semaine(root: str | pathlib.Path, step: float = 0.5) -> list[SemaineSession]:
    """All sessions that have both valence and arousal traces (resampled every ``step`` s)."""
    base = _sessions_dir(root)
    if not base.is_dir():
        raise FileNotFoundError(f'SEMAINE folder {base} does not exist')
    sessions = []
    for d in sorted(p for p in base.iterdir() if p.is_dir()):
        files = sorted(f for f in d.iterdir() if f.is_file())
        traces = {'V': [], 'A': []}
        for f in files:
            m = _TRACE.search(f.name)
            if m and f.suffix.lower() == '.txt':
                traces[m.group(1).upper()].append(f)
        if not traces['V'] or not traces['A']:
            continue
        ends = [_read_trace(p)[0].max() for p in traces['V'] + traces['A']]
        grid = np.arange(0.0, float(min(ends)) + 1e-9, step)
        sessions.append(SemaineSession(
            session_id=d.name, video=_pick(files, ('.avi', '.mp4')), audio=_pick(files, ('.wav',)),
            time=grid, valence=_average(traces['V'], grid), arousal=_average(traces['A'], grid)))
    return sessions


def semaine_samples(sessions: Sequence[SemaineSession], labels: Sequence[str],
                    window: float = 1.0) -> list[Sample]:
    """Per-window samples (label = nearest table label at the window centre)."""
    out = []
    for s in sessions:
        if s.audio is None:
            continue
        for t0 in np.arange(0.0, s.time[-1] - window + 1e-9, window):
            centre = t0 + window / 2
            out.append(Sample(path=s.audio, label=s.label_at(centre, labels),
                              speaker=s.session_id, audio=s.audio, video=s.video,
                              extra={'start': float(t0), 'end': float(t0 + window),
                                     'va': s.va_at(centre).tolist()}))
    return out
