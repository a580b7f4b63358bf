"""Speech windows for training: every file goes through ``voice_windows`` (the node's windowing
and silence gate) and ``preprocess.logmel`` (the node's features)."""
from __future__ import annotations

import dataclasses
import sys
from typing import Sequence

import numpy as np
from tqdm import tqdm

from emotion_runtime.preprocess import logmel, normalise_logmel
from emotion_runtime.speaker_calibration import normalise_by_speaker
from emotion_runtime.voice_windows import utterance_windows

from .audio_io import read_mono
from .datasets.common import Sample
from .room_noise import NOISE_KINDS, add_room_noise


def raw_vocal_section(vocal: dict) -> dict:
    """The vocal section with normalisation switched off (for computing statistics)."""
    return dict(vocal, normalisation={'type': 'none'})


def read_sample(s: Sample) -> tuple[np.ndarray, int]:
    """(mono audio, rate) of a sample's file; a noisy copy (``noisy_copies``: ``extra['room_noise']``
    = (kind, dBFS, seed)) with its room noise added.  ``AudioReadError`` names an unreadable file."""
    audio, sr = read_mono(s.path)
    noise = s.extra.get('room_noise')
    if noise:
        audio = add_room_noise(audio, sr, *noise)
    return audio, sr


def file_windows(samples: Sequence[Sample], labels: Sequence[str], vocal: dict,
                 hop_s: float, desc: str = 'speech') -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Active windows of each file as log-mel: (x [W,1,M,T], y [W], file index [W]).

    ``hop_s`` may be denser than the node's hop for training (more, overlapping windows).
    The windows are normalised as ``vocal['normalisation']`` says (``normalise_windows``).
    A sample whose ``extra['room_noise']`` is (kind, dBFS, seed) is read with that room noise
    added (``noisy_copies``).
    """
    raw = raw_vocal_section(vocal)
    idx = {k: i for i, k in enumerate(labels)}
    xs, ys, fs = [], [], []
    rate = int(vocal['sample_rate'])
    for i, s in enumerate(tqdm(samples, desc=desc, file=sys.stderr, leave=False, mininterval=2)):
        audio, sr = read_sample(s)
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


def noisy_copies(samples: Sequence[Sample], copies: int, dbfs: tuple[float, float],
                 kinds: Sequence[str], seed: int = 0) -> list[Sample]:
    """``copies`` noisy copies of every sample: copy k of one speaker is that speaker in "room"
    k, with one noise kind (from ``kinds``) and one level (uniform in ``dbfs``, dB full scale)
    for all of its files, as one microphone in one room would give.  Each copy's speaker id is
    ``SPEAKER~roomK``, so speaker normalisation calibrates to the speaker in that room, as the
    node's online calibration does; its label and corpus are the original's."""
    lo, hi = float(min(dbfs)), float(max(dbfs))
    rng = np.random.default_rng(seed)
    rooms: dict[tuple[str, int], tuple[str, float]] = {}
    out = []
    for k in range(copies):
        for i, s in enumerate(samples):
            room = rooms.setdefault((s.speaker, k), (str(kinds[int(rng.integers(len(kinds)))]),
                                                    float(rng.uniform(lo, hi))))
            out.append(dataclasses.replace(
                s, speaker=f'{s.speaker}~room{k}',
                extra=dict(s.extra, room_noise=(room[0], room[1], seed * 1_000_003 + k * 100_003 + i))))
    return out



def add_noise_arguments(p, note: str = '') -> None:
    """``--noise-copies``, ``--noise-dbfs`` and ``--noise-kinds`` on the parser or group ``p``:
    the training files' noisy copies (``with_noisy_copies``); ``note`` ends the first help."""
    p.add_argument('--noise-copies', type=int, default=0,
                   help='train also on this many noisy copies of every training file: each '
                   'speaker in each copy gets one room (a noise kind and level), as a robot\'s '
                   f'microphone would (room_noise{note}) [0]')
    p.add_argument('--noise-dbfs', type=float, nargs=2, default=(-70.0, -35.0),
                   metavar=('LO', 'HI'), help='noise level range of the copies, dB full scale '
                   '(-60 = white noise of RMS 0.001) [-70 -35]')
    p.add_argument('--noise-kinds', default=','.join(NOISE_KINDS),
                   help=f'noise kinds of the copies, comma list of {NOISE_KINDS} [%(default)s]')


def with_noisy_copies(train: Sequence[Sample], args, seed: int = 0
                      ) -> tuple[list[Sample], dict | None]:
    """(``train`` and ``args.noise_copies`` noisy copies of it (``noisy_copies``), the record of
    the copies: copies, kinds, dBFS range; None without copies).  A negative count or an unknown
    noise kind ends with SystemExit naming the option."""
    copies = int(getattr(args, 'noise_copies', 0) or 0)
    if copies < 0:
        raise SystemExit(f'--noise-copies {copies}: must be >= 0')
    if copies == 0:
        return list(train), None
    kinds = [k.strip() for k in args.noise_kinds.split(',') if k.strip()]
    bad = sorted(set(kinds) - set(NOISE_KINDS))
    if bad or not kinds:
        raise SystemExit(f'--noise-kinds {args.noise_kinds!r}: '
                         f'{f"{bad} unknown" if bad else "none given"}; choose from {NOISE_KINDS}')
    dbfs = (min(args.noise_dbfs), max(args.noise_dbfs))
    room = {'copies': copies, 'kinds': kinds, 'dbfs': [float(dbfs[0]), float(dbfs[1])]}
    return list(train) + noisy_copies(train, copies, dbfs, kinds, seed), room
