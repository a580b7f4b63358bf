"""Real audio-visual pairs (CREMA-D clips, SEMAINE sessions or CSV rows with audio + video).

Each clip (or, for SEMAINE, each segment of a session: ``semaine_segments``) becomes one fusion
sequence on the node's time grid: the audio is cut with
``voice_windows.windows`` (window/hop of the vocal section, silence gate -> voice absent), and at
each window centre a video frame is read, the largest face found with OpenCV's frontal-face Haar
cascade and cropped (10 % margin).  Where no face is found the step has no face
(``face_fallback='absent'``) or, for frontal head-and-shoulders recordings such as CREMA-D, the
centre square of the frame is used (``'center'``).  Clips shorter than ``steps`` windows are
padded with steps where both modalities are absent.

SEMAINE has no categorical labels, only continuous valence/arousal traces: its sequences carry
label -1 (no cross-entropy) and per-step valence/arousal targets, which the fusion stage fits
with the head's own valence/arousal output (class probabilities @ the documented table).
"""
from __future__ import annotations

import functools
import pathlib
import sys
from typing import Optional, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from emotion_runtime.preprocess import face_to_input, logmel, resample
from emotion_runtime.voice_windows import active_mask, windows

from .audio_io import read_mono
from .datasets.common import Sample
from .pairing import SeqBatch
from .voice_data import normalise_windows, raw_vocal_section

_CASCADE: Optional[cv2.CascadeClassifier] = None


def detect_face(frame: np.ndarray, fallback: str = 'center') -> Optional[np.ndarray]:
    """Largest frontal face of a BGR/grey frame (10 % margin), the centre square, or None."""
    global _CASCADE
    if _CASCADE is None:
        _CASCADE = cv2.CascadeClassifier(cv2.data.haarcascades +
                                         'haarcascade_frontalface_default.xml')
    grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    faces = _CASCADE.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=4, minSize=(24, 24))
    h, w = grey.shape
    if len(faces):
        x, y, fw, fh = max(faces, key=lambda r: r[2] * r[3])
        m = int(0.1 * max(fw, fh))
        return grey[max(0, y - m):min(h, y + fh + m), max(0, x - m):min(w, x + fw + m)]
    if fallback == 'center':
        s = min(h, w)
        return grey[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return None


def clip_sequence(sample: Sample, label_index: int, vision: dict, vocal: dict, steps: int,
                  face_fallback: str = 'center') -> Optional[dict]:
    """Arrays of one clip: faces [T,1,H,W], fp [T], voice [T,1,M,F] (raw log-mel, normalised by
    ``load_real_sequences``), vp [T], label (-1: none), va [T,2] (NaN: no target).  A clip
    starts at ``sample.extra['start']`` seconds (0 by default); ``extra['va']`` gives its
    per-step valence/arousal targets."""
    audio_path = sample.audio or sample.path
    if sample.video is None or audio_path is None:
        return None
    rate = int(vocal['sample_rate'])
    start = float(sample.extra.get('start', 0.0))      # segment of a longer recording
    audio = _audio_at(str(audio_path), rate)[int(round(start * rate)):]
    win_s, hop_s = float(vocal['window_seconds']), float(vocal['hop_seconds'])
    wins = windows(audio, rate, win_s, hop_s)[:steps]
    keep = active_mask(wins)
    size, n_mels = int(vision['input_size']), int(vocal['n_mels'])
    frames = 1 + int(round(win_s * rate)) // int(vocal['hop_length'])
    faces = np.zeros((steps, 1, size, size), np.float32)
    voice = np.zeros((steps, 1, n_mels, frames), np.float32)
    fp = np.zeros(steps, np.float32)
    vp = np.zeros(steps, np.float32)
    cap = cv2.VideoCapture(str(sample.video))
    if not cap.isOpened():
        raise RuntimeError(f'cannot open video {sample.video}')
    try:
        for t, w in enumerate(wins):
            voice[t, 0] = logmel(w, rate, raw_vocal_section(vocal))
            vp[t] = float(keep[t])
            cap.set(cv2.CAP_PROP_POS_MSEC, (start + t * hop_s + win_s / 2) * 1000.0)
            ok, frame = cap.read()
            crop = detect_face(frame, face_fallback) if ok and frame is not None else None
            if crop is not None and crop.size:
                faces[t] = face_to_input(crop, vision)
                fp[t] = 1.0
    finally:
        cap.release()
    va = np.full((steps, 2), np.nan, np.float32)
    if sample.extra.get('va') is not None:              # per-step valence/arousal targets
        given = np.asarray(sample.extra['va'], np.float32)[:steps]
        va[:len(given)] = given
    return {'faces': faces, 'fp': fp, 'voice': voice, 'vp': vp, 'label': label_index, 'va': va}


@functools.lru_cache(maxsize=2)
def _audio_at(path: str, rate: int) -> np.ndarray:
    """A recording as mono float32 at ``rate`` (cached: a SEMAINE session is read once for all
    of its segments, which are built one after the other)."""
    audio, sr = read_mono(path)
    return resample(audio, sr, rate)


def semaine_segments(sessions: Sequence, vocal: dict, steps: int) -> list[Sample]:
    """Cut SEMAINE sessions (``datasets.semaine.load_semaine``) into back-to-back segments of
    ``steps`` windows on the node's grid; each segment's ``extra`` holds its start time and the
    rater-averaged valence/arousal at every window centre.  Label '' (SEMAINE has none)."""
    win_s, hop_s = float(vocal['window_seconds']), float(vocal['hop_seconds'])
    length = (steps - 1) * hop_s + win_s
    centres = np.arange(steps) * hop_s + win_s / 2
    out = []
    for s in sessions:
        if s.audio is None or s.video is None:
            continue
        for t0 in np.arange(0.0, float(s.time[-1]) - length + 1e-9, steps * hop_s):
            out.append(Sample(path=pathlib.Path(s.audio), label='', speaker=s.session_id,
                              audio=pathlib.Path(s.audio), video=pathlib.Path(s.video),
                              extra={'start': float(t0),
                                     'va': s.va_at(t0 + centres).astype(np.float32).tolist()}))
    return out


class RealPairs:
    """Sequences of real pairs whose faces/windows live in the stage's pools at given offsets."""

    def __init__(self, seqs: Sequence[dict], face_offset: int, voice_offset: int) -> None:
        self.n = len(seqs)
        self.steps = seqs[0]['fp'].shape[0] if seqs else 0
        T = self.steps
        self.labels = np.array([s['label'] for s in seqs], np.int64)
        self.va = (np.stack([s['va'] for s in seqs]) if seqs
                   else np.zeros((0, T, 2), np.float32))
        self.fp = np.stack([s['fp'] for s in seqs]) if seqs else np.zeros((0, T), np.float32)
        self.vp = np.stack([s['vp'] for s in seqs]) if seqs else np.zeros((0, T), np.float32)
        base = np.arange(self.n)[:, None] * T + np.arange(T)[None, :]
        self.face_idx = face_offset + base
        self.voice_idx = voice_offset + base

    def sample(self, n: int, rng: np.random.Generator, all_present: bool = False) -> SeqBatch:
        pick = rng.integers(0, self.n, size=n)
        return SeqBatch(self.face_idx[pick], self.fp[pick].copy(), self.voice_idx[pick],
                        self.vp[pick].copy(), self.labels[pick], self.va[pick])


class MixedPairs:
    """Batches drawn partly from real pairs (fraction ``real_fraction``), partly pseudo-pairs."""

    def __init__(self, pseudo, real: Optional[RealPairs], real_fraction: float) -> None:
        self.pseudo, self.real = pseudo, real
        self.frac = real_fraction if real is not None and real.n else 0.0

    def sample(self, n: int, rng: np.random.Generator, all_present: bool = False) -> SeqBatch:
        k = int(round(n * self.frac))
        parts = []
        if n - k:
            parts.append(self.pseudo.sample(n - k, rng, all_present))
        if k:
            parts.append(self.real.sample(k, rng, all_present))
        if len(parts) == 1:
            return parts[0]
        fields = [np.concatenate([getattr(p, f) for p in parts]) for f in
                  ('face_idx', 'face_present', 'voice_idx', 'voice_present', 'labels')]
        return SeqBatch(*fields, va=np.concatenate([p.va_targets() for p in parts]))


def load_real_sequences(samples: Sequence[Sample], labels: Sequence[str], vision: dict,
                        vocal: dict, steps: int, face_fallback: str = 'center') -> list[dict]:
    idx = {k: i for i, k in enumerate(labels)}
    out, speakers = [], []
    for s in tqdm(samples, desc='real pairs', file=sys.stderr, leave=False):
        seq = clip_sequence(s, idx.get(s.label, -1), vision, vocal, steps, face_fallback)
        if seq is not None:
            out.append(seq)
            speakers.append(s.speaker)
    _normalise_voice(out, speakers, vocal.get('normalisation', {'type': 'none'}))
    return out


def _normalise_voice(seqs: list[dict], speakers: Sequence[str], norm: dict) -> None:
    """Normalise the raw voice windows of all clips in place, as the node would: a 'speaker'
    bundle is calibrated per actor from the actor's active (present) windows only."""
    if not seqs:
        return
    voice = np.concatenate([s['voice'] for s in seqs])
    active = np.concatenate([s['vp'] for s in seqs]) > 0
    spk = np.repeat(np.asarray(speakers), seqs[0]['vp'].shape[0])
    out = normalise_windows(voice, spk, norm)
    if norm.get('type') == 'speaker' and active.any():  # calibrate on speech, not on silence
        out[active] = normalise_windows(voice[active], spk[active], norm)
    T = seqs[0]['vp'].shape[0]
    for i, s in enumerate(seqs):
        s['voice'] = out[i * T:(i + 1) * T]
