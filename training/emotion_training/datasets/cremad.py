"""CREMA-D (Cao et al. 2014): ``AudioWAV/*.wav`` and ``VideoFlash/*.flv`` (or ``.mp4``), both named
``ActorID_Sentence_Emotion_Level`` e.g. ``1001_DFA_ANG_XX.wav``.  Actors 1001..1091.  Audio and
video of the same stem are real pairs.  ``split_actors`` gives actor-independent splits."""
from __future__ import annotations

import pathlib
import random
import re
from typing import Optional, Sequence

from ..labels import CREMAD_CODES
from .common import Sample

_NAME = re.compile(r'^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2}|X{2})$')


def parse_cremad_name(name: str) -> Optional[dict]:
    """Parse ``1001_DFA_ANG_XX`` -> {actor, sentence, emotion, level}; None if not CREMA-D."""
    m = _NAME.match(pathlib.Path(name).stem)
    if not m or m.group(3) not in CREMAD_CODES:
        return None
    return {'actor': m.group(1), 'sentence': m.group(2), 'emotion': CREMAD_CODES[m.group(3)],
            'level': m.group(4)}


def load_cremad(root: str | pathlib.Path, labels: Sequence[str],
                actors: Optional[Sequence[str]] = None) -> list[Sample]:
    """One Sample per utterance (``path`` = audio, ``video`` = matching clip if present)."""
    root = pathlib.Path(root)
    audio_dir = root / 'AudioWAV'
    if not audio_dir.is_dir():
        raise FileNotFoundError(f'CREMA-D folder {audio_dir} does not exist')
    videos = {}
    vdir = root / 'VideoFlash'
    if vdir.is_dir():
        for v in vdir.iterdir():
            if v.suffix.lower() in ('.flv', '.mp4'):
                videos.setdefault(v.stem, v)
    out = []
    for f in sorted(audio_dir.glob('*.wav')):
        info = parse_cremad_name(f.name)
        if info is None or info['emotion'] not in labels:
            continue
        if actors is not None and info['actor'] not in actors:
            continue
        out.append(Sample(path=f, label=info['emotion'], speaker=info['actor'], audio=f,
                          video=videos.get(f.stem),
                          extra={'corpus': 'cremad', 'sentence': info['sentence'],
                                 'level': info['level']}))
    return out


def split_actors(samples: Sequence[Sample], val_fraction: float = 0.2,
                 seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    """Actor-independent split: whole actors go to validation."""
    actors = sorted({s.speaker for s in samples})
    rng = random.Random(seed)
    rng.shuffle(actors)
    n_val = max(1, int(round(len(actors) * val_fraction)))
    val = set(actors[:n_val])
    return ([s for s in samples if s.speaker not in val], [s for s in samples if s.speaker in val])
