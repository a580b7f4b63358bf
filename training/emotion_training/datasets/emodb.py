"""EmoDB (Berlin Database of Emotional Speech): ``wav/SSaTTEv.wav``.

SS = speaker (03..16), a = always 'a', TT = text code (a01..b10), E = emotion letter
(W anger, L boredom, E disgust, A fear, F happiness, T sadness, N neutral), v = version letter.
"""
from __future__ import annotations

import pathlib
import re
from typing import Optional, Sequence

from ..labels import EMODB_CODES
from .common import Sample

_NAME = re.compile(r'^(\d\d)([a-z])(\d\d)([WLEAFTN])([a-z]?)$')


def parse_emodb_name(name: str) -> Optional[dict]:
    """Parse an EmoDB file stem; returns {speaker, text, emotion, version} or None."""
    stem = pathlib.Path(name).stem
    m = _NAME.match(stem)
    if not m:
        return None
    return {'speaker': m.group(1), 'text': m.group(2) + m.group(3),
            'emotion': EMODB_CODES[m.group(4)], 'version': m.group(5)}


def load_emodb(root: str | pathlib.Path, labels: Sequence[str],
               speakers: Optional[Sequence[str]] = None) -> list[Sample]:
    """EmoDB utterances with an emotion in ``labels`` (``root`` = the set dir or its ``wav/``)."""
    root = pathlib.Path(root)
    wav_dir = root / 'wav' if (root / 'wav').is_dir() else root
    if not wav_dir.is_dir():
        raise FileNotFoundError(f'EmoDB folder {wav_dir} does not exist')
    out = []
    for f in sorted(wav_dir.glob('*.wav')):
        info = parse_emodb_name(f.name)
        if info is None or info['emotion'] not in labels:
            continue
        if speakers is not None and info['speaker'] not in speakers:
            continue
        out.append(Sample(path=f, label=info['emotion'], speaker=info['speaker'],
                          extra={'corpus': 'emodb', 'text': info['text']}))
    return out
