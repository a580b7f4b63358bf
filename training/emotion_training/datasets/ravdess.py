"""RAVDESS (Ryerson Audio-Visual Database of Emotional Speech and Song), speech, audio only:
``Actor_AA/MM-VC-EE-II-SS-RR-AA.(flac|wav)``.

MM = modality (01 full AV, 02 video only, 03 audio only), VC = vocal channel (01 speech, 02 song),
EE = emotion (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust,
08 surprised), II = intensity (01 normal, 02 strong), SS = statement (01 "Kids are talking by the
door", 02 "Dogs are sitting by the door"), RR = repetition, AA = actor (odd male, even female).

Calm: RAVDESS asks its actors for a calm *and* a neutral rendering, and they differ (calm is a
low-arousal, mildly pleasant delivery, neutral the flat one); no other corpus here has calm.  So
``calm='exclude'`` (the default) drops the calm clips; ``calm='neutral'`` merges them into neutral
(more neutral data, at the cost of a broader neutral class).  Only the speech channel (VC 01) is
read; song files (VC 02) are skipped.
"""
from __future__ import annotations

import pathlib
import re
from typing import Optional, Sequence

from ..labels import RAVDESS_CODES
from .common import AUDIO_EXTS, Sample

_NAME = re.compile(r'^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$')
CALM_CHOICES = ('exclude', 'neutral')


def parse_ravdess_name(name: str) -> Optional[dict]:
    """Parse a RAVDESS file stem; returns {modality, channel, emotion, intensity, statement,
    repetition, actor} (emotion as a canonical name, 'calm' kept) or None."""
    m = _NAME.match(pathlib.Path(name).stem)
    if not m or m.group(3) not in RAVDESS_CODES:
        return None
    return {'modality': m.group(1), 'channel': m.group(2), 'emotion': RAVDESS_CODES[m.group(3)],
            'intensity': m.group(4), 'statement': m.group(5), 'repetition': m.group(6),
            'actor': m.group(7)}


def load_ravdess(root: str | pathlib.Path, labels: Sequence[str],
                 actors: Optional[Sequence[str]] = None, calm: str = 'exclude') -> list[Sample]:
    """RAVDESS speech clips with an emotion in ``labels`` (``root`` holds ``Actor_AA/``; files
    directly in ``root`` are read too).  ``calm``: 'exclude' (default) or 'neutral' (merged).
    The speaker is the actor number ('01'..'24'); ``actors`` restricts to those."""
    if calm not in CALM_CHOICES:
        raise ValueError(f'calm={calm!r}: use one of {CALM_CHOICES}')
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f'RAVDESS folder {root} does not exist')
    files = sorted([*root.glob('Actor_*/*'), *root.glob('*')])
    out = []
    for f in files:
        if not f.is_file() or f.suffix.lower() not in AUDIO_EXTS:
            continue
        info = parse_ravdess_name(f.name)
        if info is None or info['channel'] != '01':
            continue
        label = info['emotion']
        if label == 'calm':
            if calm == 'exclude':
                continue
            label = 'neutral'
        if label not in labels or (actors is not None and info['actor'] not in actors):
            continue
        out.append(Sample(path=f, label=label, speaker=info['actor'],
                          extra={'corpus': 'ravdess', 'intensity': info['intensity'],
                                 'statement': info['statement'],
                                 'calm': info['emotion'] == 'calm'}))
    return out
